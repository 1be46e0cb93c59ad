"""genpulse producer SDK: the event contract, pricing, and the fire-and-forget client.

Light on purpose: no Faust, no FastAPI, no Redis.
"""

from producers.budget import BudgetStatus
from producers.client import GenPulse
from producers.contract import (
    WIRE_VERSION,
    DecodeReason,
    Event,
    EventDecodeError,
    decode_event,
    encode_event,
    event_from_object,
    new_event_id,
)
from producers.events import SEED_EVENT_TYPES, EventType
from producers.metric_batch import MetricBatch, MetricSeries, decode_metric_batch
from producers.pipeline import Stats
from producers.pricing import PricedCall, PriceTable, PricingError
from producers.sdk_settings import SdkSettings
from producers.settings import GenPulseSettings

__all__ = [
    "SEED_EVENT_TYPES",
    "WIRE_VERSION",
    "BudgetStatus",
    "DecodeReason",
    "Event",
    "EventDecodeError",
    "EventType",
    "GenPulse",
    "GenPulseSettings",
    "MetricBatch",
    "MetricSeries",
    "PriceTable",
    "PricedCall",
    "PricingError",
    "SdkSettings",
    "Stats",
    "decode_event",
    "decode_metric_batch",
    "encode_event",
    "event_from_object",
    "new_event_id",
]

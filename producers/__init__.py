"""genpulse producer SDK: the event contract, pricing, and the fire-and-forget client.

Light on purpose: no Faust, no FastAPI, no Redis.
"""

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
from producers.settings import GenPulseSettings

__all__ = [
    "SEED_EVENT_TYPES",
    "WIRE_VERSION",
    "DecodeReason",
    "Event",
    "EventDecodeError",
    "EventType",
    "GenPulseSettings",
    "MetricBatch",
    "MetricSeries",
    "decode_event",
    "decode_metric_batch",
    "encode_event",
    "event_from_object",
    "new_event_id",
]

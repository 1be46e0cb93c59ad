"""Mapped spans into Kafka records: each span's events checked by the wire contract, together.

A span's events are all written or none: when one of them fails the contract (a session id
over 128 characters, a model id over 200, a time outside 2000..2100), the span is rejected
and its facts (the attributes genpulse read, each cut to 512 characters; never prompts or
completions) go to the dead-letter topic with the reason, as /v1/collect does for a bad event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from api.ingest import dead_letter
from api.kafka_writer import OutRecord
from api.otlp.genai import SpanEvents, TraceMapping
from producers.contract import DecodeReason, EventDecodeError, encode_event, event_from_object
from producers.settings import GenPulseSettings
from streams.validate import quick_valid

ORIGIN = "api /v1/otlp/v1/traces"


@dataclass(frozen=True)
class RejectedSpan:
    trace_id: str
    span_id: str
    reason: str
    message: str


@dataclass
class SpanRecords:
    records: list[OutRecord] = field(default_factory=list)
    accepted_spans: int = 0
    events: int = 0
    rejected: list[RejectedSpan] = field(default_factory=list)


def span_records(mapping: TraceMapping, settings: GenPulseSettings, now_ms: int) -> SpanRecords:
    out = SpanRecords()
    topic = settings.topic("events")
    for call in mapping.calls:
        reason, message = call.reason, call.message
        encoded: list[OutRecord] = []
        if not reason:
            try:
                encoded = [_record(topic, raw, settings.max_event_bytes) for raw in call.events]
            except EventDecodeError as exc:
                reason, message = exc.reason.value, exc.message
        if reason:
            out.rejected.append(RejectedSpan(call.trace_id, call.span_id, reason, message))
            out.records.append(_letter(settings, call, reason, message, now_ms))
            continue
        out.accepted_spans += 1
        out.events += len(encoded)
        out.records.extend(encoded)
    return out


def _record(topic: str, raw: dict[str, Any], max_bytes: int) -> OutRecord:
    """The worker's fast contract check first; the full decoder only to say what is wrong."""
    if quick_valid(raw):
        encoded, session = orjson.dumps(raw), str(raw["session_id"])
    else:
        event = event_from_object(raw)
        encoded, session = encode_event(event), event.session_id
    if len(encoded) > max_bytes:
        raise EventDecodeError(
            DecodeReason.TOO_LARGE, f"the event is {len(encoded)} bytes; the limit is {max_bytes}"
        )
    return OutRecord(topic, session.encode(), encoded)


def _letter(
    settings: GenPulseSettings, call: SpanEvents, reason: str, message: str, now_ms: int
) -> OutRecord:
    return dead_letter(settings, {"span": call.facts}, reason, message, ORIGIN, now_ms)

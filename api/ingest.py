"""Turning an HTTP body of browser events into Kafka records: parse, validate, dead-letter.

Kept apart from the route so the rules (which bodies are accepted, what a rejection says,
what goes to the dead-letter topic) are plain functions with plain tests.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from api.kafka_writer import OutRecord
from producers.contract import DecodeReason, EventDecodeError, encode_event, event_from_object
from producers.settings import GenPulseSettings


class BodyError(ValueError):
    """The body as a whole is unusable (not JSON, wrong shape, too many events)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    message: str


@dataclass
class Sorted:
    records: list[OutRecord] = field(default_factory=list)
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def parse_batch(body: bytes, max_events: int) -> list[Any]:
    """The list of raw events in `body`: a JSON array, or an object {"events": [...]}."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from None
    events = parsed.get("events") if isinstance(parsed, dict) else parsed
    if not isinstance(events, list):
        raise BodyError(
            400,
            "invalid_body",
            'expected a JSON array of events or an object {"events": [...]}',
        )
    if len(events) > max_events:
        raise BodyError(
            413,
            "too_many_events",
            f"the body holds {len(events)} events; send at most {max_events} per request",
        )
    return events


def sort_events(events: list[Any], settings: GenPulseSettings, origin: str, now_ms: int) -> Sorted:
    """Valid events become records on `events`; invalid ones go to `dlq` with their reason."""
    result = Sorted()
    events_topic = settings.topic("events")
    for index, raw in enumerate(events):
        try:
            event = event_from_object(raw)
            encoded = encode_event(event)
            if len(encoded) > settings.max_event_bytes:
                raise EventDecodeError(
                    DecodeReason.TOO_LARGE,
                    f"the event is {len(encoded)} bytes encoded; "
                    f"the limit is {settings.max_event_bytes}",
                )
        except EventDecodeError as exc:
            result.rejected.append(Rejection(index, exc.reason.value, exc.message))
            result.records.append(
                dead_letter(settings, raw, exc.reason.value, exc.message, origin, now_ms)
            )
            continue
        result.accepted += 1
        result.records.append(OutRecord(events_topic, event.session_id.encode(), encoded))
    return result


def dead_letter(
    settings: GenPulseSettings, raw: Any, reason: str, message: str, origin: str, now_ms: int
) -> OutRecord:
    original = orjson.dumps(raw)
    session = raw.get("session_id") if isinstance(raw, dict) else None
    key = session.encode() if isinstance(session, str) and session else None
    value = {
        "v": 1,
        "reason": reason,
        "message": message,
        "source_topic": settings.topic("events"),
        "partition": None,
        "offset": None,
        "origin": origin,
        "raw": base64.b64encode(original).decode("ascii"),
        "time_ms": now_ms,
    }
    return OutRecord(settings.topic("dlq"), key, orjson.dumps(value))

"""The event contract: every type round-trips; every kind of bad input is one typed error."""

from __future__ import annotations

import contextlib
import json
import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.contract import (
    DATA_SCHEMAS,
    MAX_EVENT_BYTES,
    DecodeReason,
    Event,
    EventDecodeError,
    decode_event,
    encode_event,
    encode_fields,
    new_event_id,
)
from producers.events import SEED_EVENT_TYPES, EventType

NOW_MS = int(time.time() * 1000)

VALID_DATA: dict[EventType, dict[str, object]] = {
    EventType.MODEL_CALLED: {"model": "claude-3-5-sonnet", "input_tokens": 10, "output_tokens": 5},
    EventType.GENERATION_COMPLETED: {"duration_ms": 9100.0},
    EventType.GENERATION_FAILED: {"duration_ms": 400},
    EventType.PHASE_STARTED: {"phase": "extraction"},
    EventType.PHASE_COMPLETED: {"phase": "analysis", "duration_ms": 812.5},
    EventType.PHASE_FAILED: {"phase": "synthesis"},
    EventType.FIRST_BYTE: {"elapsed_ms": 120},
    EventType.FIRST_CONTENT: {"elapsed_ms": 900},
    EventType.INTERACTIVE: {"elapsed_ms": 3000},
    EventType.QUALITY_SCORED: {"score": 88.5, "confidence": 0.9},
    EventType.SATISFACTION_RATED: {"rating": 4},
    EventType.NPS_RATED: {"score": 9},
    EventType.ERROR_OCCURRED: {"error_type": "timeout", "message": "upstream"},
    EventType.CIRCUIT_BREAKER_OPENED: {"name": "opus"},
    EventType.CIRCUIT_BREAKER_HALF_OPENED: {"name": "opus"},
    EventType.CIRCUIT_BREAKER_CLOSED: {"name": "opus"},
    EventType.QUEUE_DEPTH_SAMPLED: {"depth": 3},
    EventType.PROFILE_SELECTED: {"profile_id": "founder"},
    EventType.PROFILE_DESELECTED: {"profile_id": "founder"},
    EventType.UVP_EDITED: {"field": "headline"},
    EventType.TRANSFORMATION_EDITED: {"field": "tone"},
    EventType.BENEFIT_REORDERED: {"from_index": 2, "to_index": 0},
    EventType.UVP_APPROVED: {"edits_made": 1},
    EventType.MODEL_UPGRADED: {"from_tier": "haiku", "to_tier": "sonnet", "reason": "confidence"},
    EventType.STREAM_STARTED: {"stream_id": "st-1"},
    EventType.STREAM_COMPLETED: {"stream_id": "st-1", "duration_ms": 900, "chunks": 14},
    EventType.RETRY_FAILED: {"attempts": 3},
    EventType.GENERATION_CANCELED: {"reason": "user"},
}


def make_event(kind: EventType, **overrides: object) -> Event:
    fields: dict[str, object] = {
        "type": kind,
        "event_id": new_event_id(),
        "timestamp": NOW_MS,
        "session_id": "sess-1",
        "user_id": "user-1",
        "service": "uvp-generator",
        "data": VALID_DATA.get(kind, {"note": "free-form"}),
    }
    fields.update(overrides)
    return Event.model_validate(fields)


def wire(**fields: object) -> bytes:
    body: dict[str, object] = {
        "v": 1,
        "type": "cache_hit",
        "event_id": "e1",
        "timestamp": NOW_MS,
        "session_id": "s",
        "service": "svc",
        "data": {},
    }
    body.update(fields)
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def test_seed_types_are_the_first_24_in_order() -> None:
    assert len(SEED_EVENT_TYPES) == 24
    assert SEED_EVENT_TYPES[0] == "generation_started"
    assert SEED_EVENT_TYPES[-1] == "circuit_breaker_opened"


def test_every_typed_schema_has_a_valid_example() -> None:
    assert set(DATA_SCHEMAS) <= set(VALID_DATA)


@pytest.mark.parametrize("kind", list(EventType))
def test_every_type_round_trips(kind: EventType) -> None:
    event = make_event(kind)
    assert decode_event(encode_event(event)) == event


def test_hot_path_encoding_matches_model_encoding() -> None:
    event = make_event(EventType.PHASE_COMPLETED)
    raw = encode_fields(
        event.type.value,
        event.event_id,
        event.timestamp,
        event.session_id,
        event.user_id,
        event.service,
        event.data,
    )
    assert decode_event(raw) == event


@pytest.mark.parametrize(
    ("raw", "reason", "needle"),
    [
        (b"not json at all", DecodeReason.NOT_JSON, "JSON"),
        (b"\xff\xfe\x00", DecodeReason.NOT_JSON, "UTF-8"),
        (b"[1, 2]", DecodeReason.NOT_OBJECT, "list"),
        (b'"text"', DecodeReason.NOT_OBJECT, "str"),
        (wire(type="teleported"), DecodeReason.UNKNOWN_TYPE, "teleported"),
        (wire(type=7), DecodeReason.UNKNOWN_TYPE, "7"),
        (wire(type=...), DecodeReason.MISSING_FIELD, "type"),
        (wire(event_id=...), DecodeReason.MISSING_FIELD, "event_id"),
        (wire(session_id=...), DecodeReason.MISSING_FIELD, "session_id"),
        (wire(timestamp=...), DecodeReason.MISSING_FIELD, "timestamp"),
        (wire(timestamp=NOW_MS // 1000), DecodeReason.TIMESTAMP_UNIT, "seconds"),
        (wire(timestamp=NOW_MS * 1000), DecodeReason.TIMESTAMP_UNIT, "microseconds"),
        (wire(timestamp="yesterday"), DecodeReason.INVALID_FIELD, "timestamp"),
        (wire(timestamp=1.5e12), DecodeReason.INVALID_FIELD, "timestamp"),
        (wire(data=[1]), DecodeReason.INVALID_FIELD, "data"),
        (wire(session_id=""), DecodeReason.INVALID_FIELD, "session_id"),
        (wire(surprise=True), DecodeReason.INVALID_FIELD, "surprise"),
        (wire(v=2), DecodeReason.UNSUPPORTED_VERSION, "v1"),
        (
            wire(type="phase_completed", data={"phase": "dreaming"}),
            DecodeReason.INVALID_FIELD,
            "data.phase",
        ),
        (
            wire(
                type="model_called", data={"model": "opus", "input_tokens": -1, "output_tokens": 1}
            ),
            DecodeReason.INVALID_FIELD,
            "data.input_tokens",
        ),
        (
            wire(
                type="model_called", data={"model": "opus", "input_tokens": 1.5, "output_tokens": 1}
            ),
            DecodeReason.INVALID_FIELD,
            "data.input_tokens",
        ),
        (
            wire(type="model_called", data={"input_tokens": 1, "output_tokens": 1}),
            DecodeReason.MISSING_FIELD,
            "data.model",
        ),
        (wire(type="nps_rated", data={"score": 11}), DecodeReason.INVALID_FIELD, "data.score"),
        (
            b'{"type":"phase_completed","event_id":"e","timestamp":1764130000000,"session_id":"s",'
            b'"service":"x","data":{"phase":"analysis","duration_ms":NaN}}',
            DecodeReason.NOT_JSON,
            "JSON",
        ),
        (wire(data={"blob": "x" * MAX_EVENT_BYTES}), DecodeReason.TOO_LARGE, "limit"),
    ],
)
def test_malformed_input_gives_one_typed_error(
    raw: bytes, reason: DecodeReason, needle: str
) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_event(raw)
    assert caught.value.reason == reason
    assert needle in str(caught.value)


def test_negative_duration_is_rejected() -> None:
    raw = wire(type="phase_completed", data={"phase": "analysis", "duration_ms": -3})
    with pytest.raises(EventDecodeError, match=r"data\.duration_ms"):
        decode_event(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_exception(raw: bytes) -> None:
    with contextlib.suppress(EventDecodeError):
        decode_event(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["v", "type", "event_id", "timestamp", "session_id", "user_id", "service", "data", "x"]
        ),
        json_values,
        max_size=9,
    )
)
def test_arbitrary_json_objects_decode_fully_or_raise_typed_error(obj: dict[str, object]) -> None:
    try:
        event = decode_event(json.dumps(obj).encode())
    except EventDecodeError:
        return
    assert decode_event(encode_event(event)) == event

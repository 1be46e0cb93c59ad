"""The hot path's quick check never accepts what the contract's decoder rejects."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.contract import EventDecodeError, decode_event
from producers.events import EventType
from streams.validate import absurd, quick_valid

NOW = 1_764_130_000_000

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**7),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=1e6),
    st.text(max_size=5),
    st.sampled_from(["extraction", "analysis", "m", "timeout", ""]),
)
data_keys = st.sampled_from(
    ["phase", "duration_ms", "elapsed_ms", "model", "tier", "input_tokens", "output_tokens",
     "cost_nanousd", "priced", "score", "confidence", "rating", "error_type", "message",
     "name", "depth", "cache_read_tokens", "cache_write_1h_tokens", "price_source",
     "price_version"]
)  # fmt: skip


VALID_DATA: dict[str, dict[str, Any]] = {
    "model_called": {"model": "m", "input_tokens": 3, "output_tokens": 4, "cost_nanousd": 9},
    "phase_completed": {"phase": "analysis", "duration_ms": 12.5},
    "first_byte": {"elapsed_ms": 120},
    "quality_scored": {"score": 88.5, "confidence": 0.9},
    "satisfaction_rated": {"rating": 4},
    "nps_rated": {"score": 9},
    "error_occurred": {"error_type": "timeout", "message": "m"},
    "circuit_breaker_opened": {"name": "api"},
    "queue_depth_sampled": {"depth": 3},
}
TOP = ["v", "type", "event_id", "timestamp", "session_id", "user_id", "service", "data"]


@st.composite
def candidates(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event of some type, then 0-2 mutations (bad values, missing or extra keys)."""
    kind = draw(st.sampled_from([t.value for t in EventType]))
    event: dict[str, Any] = {"v": 1, "type": kind, "event_id": "e1", "timestamp": NOW,
                             "session_id": "s", "user_id": "u", "service": "svc",
                             "data": dict(VALID_DATA.get(kind, {}))}  # fmt: skip
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(["top", "data", "drop", "extra"]))
        if where == "top":
            event[draw(st.sampled_from(TOP))] = draw(scalars)
        elif where == "data" and isinstance(event.get("data"), dict):
            event["data"][draw(data_keys)] = draw(scalars)
        elif where == "drop":
            event.pop(draw(st.sampled_from(TOP)), None)
        else:
            event["extra"] = 1
    return event


@settings(max_examples=2000, deadline=None)
@given(candidates())
def test_quick_valid_implies_the_decoder_accepts(event: dict[str, Any]) -> None:
    if quick_valid(event):
        decode_event(orjson.dumps(event))  # must not raise
        ACCEPTED.append(1)


ACCEPTED: list[int] = []


def test_the_property_saw_accepted_events() -> None:
    """Guards the property above against a generator that never makes a valid event."""
    assert len(ACCEPTED) > 20


def test_quick_valid_accepts_ordinary_events() -> None:
    base = {"v": 1, "event_id": "e", "timestamp": NOW, "session_id": "s", "user_id": None,
            "service": "svc"}  # fmt: skip
    good = [
        {"type": "phase_completed", "data": {"phase": "analysis", "duration_ms": 12.5}},
        {
            "type": "model_called",
            "data": {
                "model": "m",
                "input_tokens": 1,
                "output_tokens": 2,
                "cost_nanousd": 3,
                "tier": "haiku",
            },
        },
        {"type": "first_byte", "data": {"elapsed_ms": 120}},
        {"type": "uvp_approved", "data": {"edits_made": 0}},
    ]
    for fields in good:
        assert quick_valid({**base, **fields})


def test_absurd_values_are_named() -> None:
    event = {"type": "phase_completed", "timestamp": NOW, "data": {"duration_ms": 9e9}}
    assert "more than a day" in (absurd(event, NOW, 3_600_000) or "")
    future = {"type": "cache_hit", "timestamp": NOW + 7_200_000, "data": {}}
    assert absurd(future, NOW, 3_600_000)
    assert absurd({**future, "timestamp": NOW}, NOW, 3_600_000) is None


def test_decoder_rejects_what_quick_check_passes_to_it() -> None:
    try:
        decode_event(b'{"type": "phase_completed"}')
    except EventDecodeError as exc:
        assert exc.reason.value == "missing_field"

"""The hot path's quick check never accepts what the contract's decoder rejects."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from producers.contract import EventDecodeError, decode_event
from producers.dimensions import tags_problem
from producers.events import EventType
from streams import validate
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
     "price_version", "profile_id", "field", "from_index", "to_index", "edits_made",
     "approved", "from_tier", "to_tier", "reason", "stream_id", "time_to_first_chunk_ms",
     "chunks", "attempts"]
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
    "profile_selected": {"profile_id": "p1"},
    "profile_deselected": {"profile_id": "p1"},
    "uvp_edited": {"field": "headline"},
    "transformation_edited": {"field": "tone"},
    "benefit_reordered": {"from_index": 2, "to_index": 0},
    "uvp_approved": {"edits_made": 2},
    "model_upgraded": {"from_tier": "haiku", "to_tier": "sonnet", "reason": "low_confidence"},
    "stream_started": {"stream_id": "st1"},
    "stream_completed": {"duration_ms": 800, "time_to_first_chunk_ms": 90.5, "chunks": 12},
    "retry_failed": {"attempts": 3},
    "generation_canceled": {"reason": "user"},
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
        *({"type": kind, "data": data} for kind, data in VALID_DATA.items()),
        *({"type": kind, "data": {}} for kind in TYPED_LENIENT),
    ]
    for fields in good:
        assert quick_valid({**base, **fields})


TYPED_LENIENT = (
    "profile_selected", "uvp_edited", "transformation_edited", "benefit_reordered",
    "uvp_approved", "model_upgraded", "stream_started", "stream_completed", "retry_failed",
    "generation_canceled",
)  # fmt: skip
"""Typed where the specification is silent: every field optional, so `{}` is valid."""


def test_the_new_types_are_strict_on_types() -> None:
    base = {"v": 1, "event_id": "e", "timestamp": NOW, "session_id": "s", "service": "svc"}
    wrong = [
        ("profile_selected", {"profile_id": 7}),
        ("benefit_reordered", {"from_index": -1}),
        ("benefit_reordered", {"to_index": 1.5}),
        ("uvp_approved", {"edits_made": "2"}),
        ("uvp_approved", {"approved": "no"}),
        ("model_upgraded", {"to_tier": ""}),
        ("stream_completed", {"duration_ms": -3}),
        ("stream_completed", {"chunks": True}),
        ("retry_failed", {"attempts": -1}),
        ("generation_canceled", {"reason": 5}),
    ]
    for kind, data in wrong:
        event = {**base, "type": kind, "data": data}
        assert not quick_valid(event), (kind, data)
        try:
            decode_event(orjson.dumps(event))
        except EventDecodeError as exc:
            assert exc.reason.value == "invalid_field", (kind, exc)
        else:
            raise AssertionError(f"{kind} {data} decoded")


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


tag_keys = st.one_of(
    st.sampled_from(["feature", "team", "a.b-c_9", "Team", "", "a b", "k" * 40, "k" * 41]),
    st.text(alphabet="abz09_.-A \n", max_size=42),
    st.integers(0, 3),
)
tag_values = st.one_of(
    st.sampled_from(["x" * 100, "x" * 101, ""]), st.text(max_size=102), st.integers(0, 3), st.none()
)
good_tags = st.dictionaries(
    st.from_regex(r"[a-z0-9_.-]{1,40}", fullmatch=True),
    st.text(min_size=1, max_size=100),
    min_size=8,
    max_size=12,
)  # near the limits on count, valid otherwise


@settings(max_examples=300, deadline=None)
@example([{"k": "x" * 100}, {"k": "x" * 101}, {"k": ""}])  # the limits, exactly
@example([{f"k{i}": "v" for i in range(10)}, {f"k{i}": "v" for i in range(11)}])
@example([{"k" * 40: "v"}, {"k" * 41: "v"}, {"k\n": "v"}])
@given(
    st.lists(
        st.one_of(st.dictionaries(tag_keys, tag_values, max_size=12), good_tags),
        min_size=1,
        max_size=4,
    )
)
def test_the_memoised_tag_check_answers_as_the_contract(batches: list[dict[Any, Any]]) -> None:
    """Each tags dict twice: the first call may fill the memo, the second answers from it."""
    for tags in [*batches, *batches]:
        assert validate._tags_valid(tags) == (tags_problem(tags) is None), tags


def test_the_tag_key_memo_stays_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "KNOWN_TAG_KEYS_MAX", 50)
    monkeypatch.setattr(validate, "_known_tag_keys", set())
    for i in range(1000):  # hostile input: a new valid key in every event
        assert validate._tags_valid({f"k{i}": "v"})
        assert len(validate._known_tag_keys) <= 50
    assert validate._tags_valid({"k999": "v"}) and "k999" in validate._known_tag_keys
    assert not validate._tags_valid({"Bad": "v"}) and "Bad" not in validate._known_tag_keys
    assert not validate._tags_valid({"k999": ""})  # a known key does not excuse its value

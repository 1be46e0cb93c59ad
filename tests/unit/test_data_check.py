"""track()'s data check rejects exactly what the worker dead-letters, for the same reason;
budget threshold callbacks fire once per crossed threshold, lowest first."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.budget import BudgetStatus, BudgetView
from producers.contract import EventDecodeError, decode_event
from producers.data_check import data_problem, data_valid
from producers.events import EventType
from streams.validate import absurd
from tests.streams.test_validate import VALID_DATA, data_keys, scalars

NOW = 1_764_130_000_000
TYPES = [t.value for t in EventType if t is not EventType.METRIC_BATCH]


@st.composite
def typed_data(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(TYPES))
    data = dict(VALID_DATA.get(kind, {}))
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            data[draw(data_keys)] = draw(st.one_of(scalars, st.integers(0, 10**12)))
        else:
            data.pop(draw(data_keys), None)
    return kind, data


def worker_verdict(kind: str, data: dict[str, Any]) -> str | None:
    """The DLQ reason the worker gives an event carrying `data`, or None when it counts it."""
    wire = {"v": 1, "type": kind, "event_id": "e", "timestamp": NOW, "session_id": "s",
            "service": "svc", "data": data}  # fmt: skip
    try:
        decode_event(orjson.dumps(wire))
    except EventDecodeError as exc:
        return exc.reason.value
    return "absurd_value" if absurd(wire, NOW, 3_600_000) else None


@settings(max_examples=1500, deadline=None)
@given(typed_data())
def test_track_rejects_what_the_worker_dead_letters_for_the_same_reason(
    case: tuple[str, dict[str, Any]],
) -> None:
    kind, data = case
    expected = worker_verdict(kind, data)
    problem = data_problem(kind, data)
    assert (problem[0] if problem else None) == expected, (problem, expected)
    if data_valid(kind, data):  # the fast answer is never wrong when it says yes
        assert expected is None


def test_ordinary_data_takes_the_fast_path() -> None:
    for kind, data in VALID_DATA.items():
        assert data_valid(kind, data), kind
    assert data_valid("profile_selected", {"profile_id": "p"})
    assert not data_valid("phase_completed", {})
    assert not data_valid("stream_completed", {"duration_ms": 2 * 86_400_000})
    # any duration key past a day is absurd, not only the one the type is known for
    late = {"time_to_first_chunk_ms": 86_400_001}
    assert not data_valid("phase_completed", {"phase": "analysis", "duration_ms": 1.0, **late})
    assert not data_valid("phase_started", {"phase": "analysis", **late})
    assert not data_valid("generation_completed", {"duration_ms": 1.0, **late})
    for kind in ("model_called", "first_byte"):
        assert not data_valid(kind, {**VALID_DATA[kind], **late}), kind


def _record(percent: float, state: str) -> bytes:
    return orjson.dumps(
        {"v": 1, "scope": "global", "period": datetime.now(UTC).date().isoformat(),
         "budget_nanousd": 100, "spend_nanousd": int(percent), "percent_used": percent,
         "state": state, "thresholds": [0.5, 0.8, 0.9, 1.0], "updated_ms": 1}
    )  # fmt: skip


def test_one_record_crossing_several_thresholds_fires_each_in_order() -> None:
    view = BudgetView("UTC")
    fired: list[tuple[float, str]] = []
    done = threading.Event()

    def callback(percent: float, status: BudgetStatus) -> None:
        fired.append((percent, status.state))
        if percent == 100:
            done.set()

    view.on_threshold(callback)
    view.apply(b"global", _record(10, "ok"), quiet=True)  # the baseline: nothing fires
    view.apply(b"global", _record(40, "ok"), quiet=False)
    view.apply(b"global", _record(95, "critical"), quiet=False)  # 50, 80, 90 at once
    view.apply(b"global", _record(96, "critical"), quiet=False)  # no new threshold
    view.apply(b"global", _record(120, "stopped"), quiet=False)
    assert done.wait(5)
    time.sleep(0.1)
    assert fired == [(50, "critical"), (80, "critical"), (90, "critical"), (100, "stopped")]

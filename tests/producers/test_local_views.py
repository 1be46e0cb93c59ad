"""This process's own views: timers (sync, async, decorators), marks, metrics, events."""

from __future__ import annotations

import asyncio
import time

import orjson

from producers.buffer import EventBuffer
from tests.producers.conftest import ClientFactory


def test_timers_marks_and_phase_metrics(make_client: ClientFactory) -> None:
    perf = make_client().performance

    timer_id = perf.start_timer("load")
    time.sleep(0.01)
    elapsed = perf.end_timer(timer_id)
    assert elapsed is not None and elapsed >= 10

    @perf.timer("sync-fn")
    def double(x: int) -> int:
        return 2 * x

    @perf.timer("async-fn")
    async def triple(x: int) -> int:
        await asyncio.sleep(0)
        return 3 * x

    async def scoped() -> None:
        async with perf.timer("async-block"):
            await asyncio.sleep(0)

    assert double(2) == 4
    assert asyncio.run(triple(2)) == 6
    asyncio.run(scoped())
    with perf.timer("block"):
        pass
    perf.mark("start")
    perf.mark("end")
    assert perf.measure("start-to-end", "start", "end") is not None
    assert perf.measure("nope", "missing") is None
    for ms in (100.0, 200.0, 300.0, 400.0):
        perf.record_phase_time("analysis", ms)
    perf.record_generation_time(1234.0)

    metrics = perf.get_series()
    for label in ("load", "sync-fn", "async-fn", "async-block", "block", "start-to-end"):
        assert metrics[f"timer_duration_ms{{label={label}}}"]["count"] == 1
    phase = perf.get_phase_metrics()["analysis"]
    assert phase["count"] == 4 and phase["avg_duration_ms"] == 250.0
    assert abs(phase["p50_duration_ms"] - 200.0) <= 2.0
    assert (phase["min_duration_ms"], phase["max_duration_ms"]) == (100.0, 400.0)
    summary = orjson.loads(perf.export_to_json())["summary"]
    assert summary["generation"]["count"] == 1 and summary["open_timers"] == 0


def test_get_events_is_a_bounded_recent_view(make_client: ClientFactory) -> None:
    events = make_client(local_view_size=3).events
    for i in range(5):
        events.track("cache_hit", {"i": i}, session_id="s", user_id="u")
    view = events.get_events()
    assert [e["data"]["i"] for e in view] == [2, 3, 4]
    assert view[0]["type"] == "cache_hit" and view[0]["user_id"] == "u"
    events.clear_events()
    assert events.get_events() == []


def test_track_copies_data_so_later_changes_do_not_leak(make_client: ClientFactory) -> None:
    events = make_client().events
    data = {"i": 1}
    events.track("cache_hit", data, session_id="s")
    data["i"] = 2
    assert events.get_events()[-1]["data"] == {"i": 1}


def test_buffer_drops_oldest_and_counts_exactly() -> None:
    buffer = EventBuffer(max_events=4, max_bytes=10_000)
    for i in range(10):
        buffer.put(("cache_hit", 0.0, "s", None, (("i", i),)))
    assert (buffer.accepted, buffer.dropped, buffer.waiting()) == (10, 6, 4)
    taken, removed = buffer.take(2, 10_000)
    assert [dict(r[4] or ())["i"] for r in taken] == [6, 7] and removed == 8
    buffer.put(("cache_hit", 0.0, "s", None, (("i", 10),)))  # held events still count
    assert buffer.dropped == 7 and buffer.pending() == (4, 4 * 264)
    buffer.release(2, 2 * 264)
    assert buffer.pending() == (2, 2 * 264)

"""Gauges from the worker's Redis snapshots, read through the real MetricsReader."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from streams import keys
from streams.partial import Partial, Targets
from streams.reader import MetricsReader
from streams.sinks.aggregates import AggregatePoller
from streams.sinks.samples import Kind, Sample

NOW_S = 1_764_130_000.0  # a fixed clock: the snapshot below sits in the minute before it


class Collect:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def offer(self, sample: Sample) -> None:
        self.samples.append(sample)


async def test_poll_turns_snapshots_into_gauges(redis: aioredis.Redis, unique: str) -> None:
    partial = Partial()
    events: list[tuple[str, dict[str, object]]] = [
        ("generation_started", {}),
        ("generation_started", {}),
        ("generation_failed", {}),
        ("generation_completed", {"duration_ms": 4000}),
        ("phase_completed", {"phase": "analysis", "duration_ms": 800}),
        ("first_byte", {"elapsed_ms": 200}),
        ("cache_hit", {}),
        ("cache_hit", {}),
        ("cache_hit", {}),
        ("cache_miss", {}),
        (
            "model_called",
            {"model": "claude-opus", "tier": "opus", "input_tokens": 1, "output_tokens": 1,
             "cost_nanousd": 2_500_000_000, "priced": True},
        ),
    ]  # fmt: skip
    for kind, data in events:
        partial.add_event(kind, data, Targets())
    blob = orjson.dumps(partial.to_json())
    minute = keys.floor(int(NOW_S * 1000) - 30_000, keys.MINUTE_MS)
    await redis.hset(keys.minute(unique, minute), "0", blob)
    try:
        target = Collect()
        poller = AggregatePoller(
            MetricsReader(redis, unique),
            [target],
            env="test",
            window_s=300,
            interval_s=1,
            timezone="UTC",
            clock=lambda: NOW_S,
        )
        await poller.poll_once()
    finally:
        await redis.delete(keys.minute(unique, minute))
    got = {(s.name, s.tags): s for s in target.samples}
    window = ("env:test", "window:300s")
    assert all(s.kind is Kind.GAUGE and s.timestamp_s == int(NOW_S) for s in target.samples)
    assert got[("cache.hit_rate", window)].value == 0.75
    assert got[("error_rate", window)].value == 0.5
    assert got[("phase.duration.p95", (*window, "phase:analysis"))].value == pytest.approx(
        800, rel=0.01
    )
    assert got[("generation.duration.p50", window)].value == pytest.approx(4000, rel=0.01)
    assert got[("time_to_first_byte.p99", window)].value == pytest.approx(200, rel=0.01)
    assert got[("time_to_complete.p95", window)].value == pytest.approx(4000, rel=0.01)
    assert got[("cost.today", ("env:test", "model:claude-opus", "tier:opus"))].value == 2.5
    assert got[("cost.today.total", ("env:test",))].value == 2.5
    assert ("phase.duration.p95", (*window, "phase:synthesis")) not in got  # no data: no gauge

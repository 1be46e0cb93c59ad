"""Whole-pipeline gauges from the worker's aggregates (MetricsReader over Redis), every poll.

Percentiles of SDK-side metric batches never pass through `<prefix>.events`, so they reach
Datadog this way: p50/p95/p99 per phase, of whole generations and of time-to-first-byte/
content/interactive/complete over the last `window_s`; cache hit rate and error rate over the
same window; cost per model since the start of today (in the worker's cost time zone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from streams.reader import MetricsReader
from streams.sinks.health import SinkStats
from streams.sinks.samples import Kind, Sample, tag

log = logging.getLogger("genpulse.sinks")

QUANTILES = ("p50", "p95", "p99")
MARKS = ("time_to_first_byte", "time_to_first_content", "time_to_interactive", "time_to_complete")


class SampleTarget(Protocol):
    def offer(self, sample: Sample) -> None: ...


def samples_from_views(
    performance: dict[str, Any],
    health: dict[str, Any],
    costs_today: dict[str, Any],
    env: str,
    window_s: int,
    now_s: int,
) -> list[Sample]:
    """Gauges of one poll; a value the views leave as None (no data) is not sent."""
    base = (tag("env", env), tag("window", f"{window_s}s"))
    out: list[Sample] = []

    def gauge(name: str, value: Any, unit: str, *extra: str, tags: Iterable[str] = base) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append(Sample(name, Kind.GAUGE, float(value), (*tags, *extra), unit, now_s))

    for phase, stats in performance.get("phases", {}).items():
        for q in QUANTILES:
            gauge(
                f"phase.duration.{q}",
                stats.get(f"{q}_duration_ms"),
                "millisecond",
                tag("phase", phase),
            )
    for q in QUANTILES:
        gauge(f"generation.duration.{q}", performance.get(f"{q}_duration_ms"), "millisecond")
    for mark in MARKS:
        stats = performance.get(mark, {})
        for q in QUANTILES:
            gauge(f"{mark}.{q}", stats.get(f"{q}_ms"), "millisecond")
    gauge("cache.hit_rate", performance.get("cache_hit_rate"), "fraction")
    gauge("error_rate", health.get("error_rate"), "fraction")
    day = (tag("env", env),)
    for row in costs_today.get("by_model", []):
        model = (tag("model", row["model"]), tag("tier", row.get("tier") or "unknown"))
        gauge("cost.today", int(row["cost_nanousd"]) / 1e9, "dollar", *model, tags=day)
    gauge(
        "cost.today.total", int(costs_today.get("total_cost_nanousd", 0)) / 1e9, "dollar", tags=day
    )
    return out


class AggregatePoller:
    """Reads the views every `interval_s` and offers their gauges to the sample sinks."""

    def __init__(
        self,
        reader: MetricsReader,
        targets: list[SampleTarget],
        *,
        env: str,
        window_s: int,
        interval_s: float,
        timezone: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._targets = targets
        self._env = env
        self._window_s = window_s
        self._interval_s = interval_s
        self._zone = ZoneInfo(timezone)
        self._clock = clock
        self.stats = SinkStats("poll:aggregates")

    async def poll_once(self) -> list[Sample]:
        now = self._clock()
        end_ms = int(now * 1000)
        start_ms = end_ms - self._window_s * 1000
        midnight = datetime.fromtimestamp(now, self._zone).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        performance = await self._reader.performance(start_ms, end_ms)
        health = await self._reader.health(start_ms, end_ms)
        costs = await self._reader.costs(int(midnight.timestamp() * 1000), end_ms)
        samples = samples_from_views(
            performance, health, costs, self._env, self._window_s, int(now)
        )
        for sample in samples:
            for target in self._targets:
                target.offer(sample)
        return samples

    async def run(self) -> None:
        while True:
            try:
                samples = await self.poll_once()
                self.stats.sent += len(samples)
                self.stats.last_sent_ms = int(self._clock() * 1000)
            except Exception as exc:  # Redis down or no snapshots yet: try next time
                self.stats.failed += 1
                self.stats.error(f"{type(exc).__name__}: {exc}")
                log.warning("aggregates not read: %s", exc)
            await asyncio.sleep(self._interval_s)

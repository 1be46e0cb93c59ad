"""Datadog HTTP metrics API v2: counts and gauges posted to `{base}/api/v2/series`.

Every `flush_s` the board turns what it collected into series: counts summed over the
interval (type 1, with `interval`), gauges at their latest value (type 3). Distributions
need DogStatsD (v2 series has no distribution type); their percentiles arrive here as
gauges from the worker's aggregates. One POST carries at most `SERIES_PER_POST` series.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from pydantic import SecretStr

from streams.sinks.delivery import Outbox, RetryPolicy
from streams.sinks.health import SinkStats
from streams.sinks.http import post_json
from streams.sinks.samples import Kind, Sample

SERIES_PER_POST = 500
TYPE_COUNT = 1
TYPE_GAUGE = 3

Context = tuple[str, tuple[str, ...]]


class SeriesBoard:
    """Counts and gauges since the last drain, keyed by (name, tags); at most `max_contexts`."""

    def __init__(self, namespace: str, max_contexts: int) -> None:
        self._namespace = namespace
        self._max = max_contexts
        self._counts: dict[Context, tuple[float, str]] = {}
        self._gauges: dict[Context, tuple[float, str]] = {}

    def add(self, sample: Sample) -> bool:
        """False when the sample was not kept (a distribution, or too many contexts)."""
        if sample.kind is Kind.DISTRIBUTION:
            return False
        context = (sample.name, tuple(sorted(sample.tags)))
        table = self._counts if sample.kind is Kind.COUNT else self._gauges
        if context not in table and len(self._counts) + len(self._gauges) >= self._max:
            return False
        if sample.kind is Kind.COUNT:
            previous = table.get(context, (0.0, sample.unit))[0]
            table[context] = (previous + sample.value, sample.unit)
        else:
            table[context] = (sample.value, sample.unit)
        return True

    def drain(self, now_s: int, interval_s: int) -> list[dict[str, Any]]:
        """Series for this interval; counts restart from zero, gauges are kept."""
        series = [
            self._series(name, tags, TYPE_COUNT, value, unit, now_s, interval_s)
            for (name, tags), (value, unit) in self._counts.items()
        ]
        series += [
            self._series(name, tags, TYPE_GAUGE, value, unit, now_s, None)
            for (name, tags), (value, unit) in self._gauges.items()
        ]
        self._counts.clear()
        return series

    def _series(
        self,
        name: str,
        tags: tuple[str, ...],
        kind: int,
        value: float,
        unit: str,
        now_s: int,
        interval_s: int | None,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "metric": f"{self._namespace}.{name}",
            "type": kind,
            "points": [{"timestamp": now_s, "value": value}],
            "tags": list(tags),
        }
        if interval_s is not None:
            item["interval"] = interval_s
        if unit:
            item["unit"] = unit
        return item


class DatadogSeriesSink:
    name = "datadog_series"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        api_key: SecretStr,
        namespace: str,
        flush_s: float,
        capacity: int,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._url = api_url.rstrip("/") + "/api/v2/series"
        self._api_key = api_key
        self._flush_s = flush_s
        self._clock = clock
        self.board = SeriesBoard(namespace, max_contexts=capacity)
        self.stats = SinkStats(self.name)
        self.outbox: Outbox[dict[str, Any]] = Outbox(
            self.stats, self._deliver, capacity=capacity, retry=retry, batch_size=SERIES_PER_POST
        )

    def offer(self, sample: Sample) -> None:
        if not self.board.add(sample) and sample.kind is not Kind.DISTRIBUTION:
            self.stats.dropped += 1

    def flush(self) -> None:
        """Move the board's series into the outbox (the ticker calls this every flush_s)."""
        for series in self.board.drain(int(self._clock()), max(1, round(self._flush_s))):
            self.outbox.offer(series)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.outbox.run())
            group.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            self.flush()

    async def _deliver(self, batch: list[dict[str, Any]]) -> int:
        headers = {"DD-API-KEY": self._api_key.get_secret_value()}
        await post_json(self._session, self._url, {"series": batch}, headers)
        return 0

"""The cluster fault tests' load and clock: a steady SDK load on a thread of its own, and a
sampler that measures how long the figures the API serves (the Redis snapshots, read with the
same MetricsReader the API uses) stood still while events kept being acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from producers import GenPulse
from producers.pipeline import Stats
from streams.reader import MetricsReader


class SdkLoad:
    """Replays `events` (dicts as tests/streams/workload.py makes them) through the SDK at
    `rate` events/s. The SDK stamps each event itself; what it acknowledged is in stats()."""

    def __init__(self, bootstrap: str, prefix: str, events: list[dict[str, Any]], rate: int):
        self.events, self.rate = events, rate
        self.client = GenPulse(
            service="cluster-load",
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            max_buffer_events=len(events) + 1,  # a fault must never make the SDK drop
            max_buffer_bytes=1 << 30,
            follow_budget_state=False,
        )
        self.tracked = 0
        self.began = self.ended = 0.0
        self._thread = threading.Thread(target=self._run, name="sdk-load", daemon=True)

    def start(self) -> SdkLoad:
        self.began = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        step = max(1, self.rate // 100)  # 100 slices a second
        for i in range(0, len(self.events), step):
            for e in self.events[i : i + step]:
                self.client.events.track(e["type"], e["data"], e["session_id"], e["user_id"])
                self.tracked += 1
            due = self.began + (i + step) / self.rate
            time.sleep(max(0.0, due - time.monotonic()))
        self.ended = time.monotonic()

    def finish(self, timeout_s: float) -> Stats:
        """Wait for the replay, then for every event's acknowledgement; the final stats."""
        self._thread.join()
        self.client.flush(timeout_s)
        stats = self.client.stats()
        self.client.close(10)
        return stats

    @property
    def seconds(self) -> float:
        return self.ended - self.began


@dataclass
class Staleness:
    """Samples the figures every `every_s` on a Redis connection of its own; stale = a gap
    longer than `grace_s` between two changes of the event count."""

    redis_url: str
    prefix: str
    start_ms: int
    end_ms: int
    every_s: float = 0.5
    grace_s: float = 2.0
    changes: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> Staleness:
        self._task = asyncio.ensure_future(self._sample())
        return self

    async def _sample(self) -> None:
        client = aioredis.from_url(self.redis_url)
        reader = MetricsReader(client, self.prefix)
        last = -1
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    summary = await asyncio.wait_for(reader.summary(self.start_ms, self.end_ms), 5)
                    if summary["events"] != last:
                        self.changes.append(time.monotonic())
                        last = summary["events"]
                await asyncio.sleep(self.every_s)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.wait([self._task], timeout=10)

    def stale_seconds(self, since: float, until: float) -> float:
        """Seconds in [since, until] beyond `grace_s` after each change without a next one."""
        marks = [since, *[t for t in self.changes if since < t < until], until]
        return sum(max(0.0, b - a - self.grace_s) for a, b in itertools.pairwise(marks))

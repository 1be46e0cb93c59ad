"""The snapshot cache: one computation per worker notice, none reused without a subscription."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from api.live import UpdateFeed
from api.snapshot_cache import ReaderThread, SnapshotCache
from streams.reader import MetricsReader


class CountingReader(MetricsReader):
    """The real reader, counting how often the summary is really computed."""

    calls = 0

    async def summary(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        CountingReader.calls += 1
        return await super().summary(start_ms, end_ms)


async def wait_connected(feed: UpdateFeed) -> None:
    deadline = time.monotonic() + 10
    while not feed.connected:
        assert time.monotonic() < deadline, "no subscription"
        await asyncio.sleep(0.05)


async def test_reads_are_shared_until_the_worker_publishes(redis_url: str, unique: str) -> None:
    CountingReader.calls = 0
    redis = aioredis.from_url(redis_url)
    feed = UpdateFeed(redis, f"{unique}:updates")
    reader = ReaderThread(lambda: CountingReader(aioredis.from_url(redis_url), unique))
    cache = SnapshotCache(reader, feed)
    feed.start()
    try:
        await wait_connected(feed)
        answers = await asyncio.gather(*(cache.read("summary", 0, 60_000) for _ in range(20)))
        assert CountingReader.calls == 1 and all(a == answers[0] for a in answers)

        before = feed.latest_id
        await redis.publish(f"{unique}:updates", orjson.dumps({"written_ms": 1}))
        while feed.latest_id == before:
            await asyncio.sleep(0.01)
        await cache.read("summary", 0, 60_000, fresh=True)
        assert CountingReader.calls == 2
        await cache.read("summary", 0, 60_000)
        assert CountingReader.calls == 2

        await feed.stop()
        feed.connected = False  # as after a lost subscription
        await cache.read("summary", 0, 60_000)
        await cache.read("summary", 0, 60_000)
        assert CountingReader.calls == 4
    finally:
        await feed.stop()
        await reader.close()
        await redis.aclose()

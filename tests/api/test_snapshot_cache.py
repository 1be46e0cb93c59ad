"""The snapshot cache: one computation per worker notice, none reused without a subscription,
never one slice's answer for another; the reader runs in its own process (real Redis)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from api.live import UpdateFeed
from api.snapshot_cache import ReaderProcess, SnapshotCache
from streams.reader import MetricsReader
from streams.slicing import Where


class CountingReader(MetricsReader):
    """The real reader, noting in Redis each summary it really computes (it lives in the
    reader process, so the test reads the notes from Redis)."""

    async def summary(
        self, start_ms: int, end_ms: int, where: Where | None = None, group_by: str | None = None
    ) -> dict[str, Any]:
        await self.redis.rpush(f"{self.prefix}:computed", repr(where))
        await asyncio.sleep(float(await self.redis.get(f"{self.prefix}:slow") or 0))
        return await super().summary(start_ms, end_ms, where, group_by)


def counting_reader(redis_url: str, prefix: str) -> CountingReader:
    return CountingReader(aioredis.from_url(redis_url), prefix)


async def computed(redis: aioredis.Redis, prefix: str) -> list[str]:
    return [n.decode() for n in await redis.lrange(f"{prefix}:computed", 0, -1)]


async def wait_connected(feed: UpdateFeed) -> None:
    deadline = time.monotonic() + 10
    while not feed.connected:
        assert time.monotonic() < deadline, "no subscription"
        await asyncio.sleep(0.05)


async def test_reads_are_shared_until_the_worker_publishes(redis_url: str, unique: str) -> None:
    redis = aioredis.from_url(redis_url)
    feed = UpdateFeed(redis, f"{unique}:updates")
    reader = ReaderProcess(counting_reader, redis_url, unique)
    cache = SnapshotCache(reader, feed)
    feed.start()
    try:
        await wait_connected(feed)
        answers = await asyncio.gather(*(cache.read("summary", 0, 60_000) for _ in range(20)))
        assert len(await computed(redis, unique)) == 1
        assert all(a == answers[0] for a in answers)

        before = feed.latest_id
        await redis.publish(f"{unique}:updates", orjson.dumps({"written_ms": 1}))
        while feed.latest_id == before:
            await asyncio.sleep(0.01)
        await cache.read("summary", 0, 60_000, fresh=True)
        assert len(await computed(redis, unique)) == 2
        await cache.read("summary", 0, 60_000)
        assert len(await computed(redis, unique)) == 2

        await feed.stop()
        feed.connected = False  # as after a lost subscription
        await cache.read("summary", 0, 60_000)
        await cache.read("summary", 0, 60_000)
        assert len(await computed(redis, unique)) == 4
    finally:
        await feed.stop()
        await reader.close()
        await redis.aclose()


async def test_the_cache_keys_on_filters_and_group_by(redis_url: str, unique: str) -> None:
    redis = aioredis.from_url(redis_url)
    feed = UpdateFeed(redis, f"{unique}:updates")
    reader = ReaderProcess(counting_reader, redis_url, unique)
    cache = SnapshotCache(reader, feed)
    feed.start()
    try:
        await wait_connected(feed)
        slices: list[dict[str, Any]] = [
            {},
            {"where": Where(service="a")},
            {"where": Where(service="b")},
            {"where": Where(service="a"), "group_by": "tier"},
            {"group_by": "tier"},
        ]
        for _ in range(3):  # the same generation: each slice computed once, never another's
            answers = [await cache.read("summary", 0, 60_000, **cut) for cut in slices]
        expected = [None, *(Where(service=s) for s in "aba"), None]
        assert await computed(redis, unique) == [repr(w) for w in expected]
        assert answers[3]["group_by"] == answers[4]["group_by"] == "tier"
        assert "group_by" not in answers[1]
    finally:
        await feed.stop()
        await reader.close()
        await redis.aclose()


async def test_a_window_rolling_over_serves_the_previous_minute_until_computed(
    redis_url: str, unique: str
) -> None:
    redis = aioredis.from_url(redis_url)
    feed = UpdateFeed(redis, f"{unique}:updates")
    reader = ReaderProcess(counting_reader, redis_url, unique)
    cache = SnapshotCache(reader, feed)
    feed.start()
    try:
        await wait_connected(feed)
        first = await cache.read("summary", 0, 3_600_000, window="1h")
        await redis.set(f"{unique}:slow", 2)  # the next minute's answer takes 2 s
        began = time.monotonic()
        stand_in = await cache.read("summary", 60_000, 3_660_000, window="1h")
        assert time.monotonic() - began < 1.5 and stand_in == first
        assert stand_in["start_ms"] == 0  # it says the range it covers
        other = await cache.read("summary", 60_000, 3_660_000, window="1h", group_by="tier")
        assert other["start_ms"] == 60_000  # another question (a slice) never stands in
        fresh = await cache.read("summary", 60_000, 3_660_000, window="1h", fresh=True)
        assert fresh["start_ms"] == 60_000
        assert len(await computed(redis, unique)) == 3  # the fresh read waited for the 2nd
    finally:
        await feed.stop()
        await reader.close()
        await redis.aclose()

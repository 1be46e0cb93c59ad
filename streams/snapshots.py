"""Writes the worker's rows to Redis at most once a second, pipelined, with a pub/sub notice.

Rows are whole values (never deltas), so the writer keeps only the newest value per
(key, field): when Redis is down the dirty set just waits and is written, complete and
current, when Redis answers again. The aggregation never waits for Redis.

A worker's values for a partition must never land after its next owner's (a stale total
that nothing rewrites undercounts for good), so a worker hands a partition over with
`hand_over` before it rejoins the group: what it queued is written, after any write in
flight, or dropped if Redis fails (the next owner writes every row it restores).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streams import keys

log = logging.getLogger("genpulse.worker")
MAX_ALERTS = 10_000


class SnapshotWriter:
    def __init__(self, redis_url: str, prefix: str, interval_s: float = 1.0) -> None:
        self.redis = aioredis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.prefix = prefix
        self.interval_s = interval_s
        self._dirty: dict[tuple[str, str], tuple[bytes, int | None]] = {}
        self._alerts: list[tuple[int, bytes]] = []
        self.writes = 0
        self.failures = 0
        self.last_written_ms = 0
        self._stopping = asyncio.Event()
        self._was_down = False
        self._recovered = False
        self._writing = asyncio.Lock()  # one write at a time: a later one never lands first
        self.on_recovered: list[Callable[[], Awaitable[None]]] = []
        self.before_flush: list[Callable[[], Awaitable[None]]] = []  # last puts of a snapshot

    def put(self, key: str, field: str, value: bytes, ttl_s: int | None) -> None:
        self._dirty[(key, field)] = (value, ttl_s)

    def add_alert(self, time_ms: int, record: bytes) -> None:
        self._alerts.append((time_ms, record))

    @property
    def pending(self) -> int:
        return len(self._dirty) + len(self._alerts)

    async def run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            await self.flush()

    async def stop(self) -> None:
        self._stopping.set()
        await self.flush()
        await self.redis.aclose()

    async def flush(self) -> bool:
        for callback in self.before_flush:
            await callback()
        written = await self._write()
        if self._recovered:  # Redis may have come back empty: rewrite everything
            self._recovered = False
            for callback in self.on_recovered:
                await callback()
        return written

    async def hand_over(self, released: Callable[[str, str], bool]) -> bool:
        """Write what is queued now, after any write in flight, so none of the `released`
        (key, field) values can land after their next owner's; if Redis fails, drop those
        instead (their next owner writes them all when it restores them). The caller holds
        its own lock, so no before-flush callback runs here."""
        if await self._write():
            return True
        self._dirty = {item: entry for item, entry in self._dirty.items() if not released(*item)}
        return False

    async def _write(self) -> bool:
        async with self._writing:
            return await self._write_pending()

    async def _write_pending(self) -> bool:
        if not self._dirty and not self._alerts:
            return True
        dirty, self._dirty = self._dirty, {}
        alerts, self._alerts = self._alerts, []
        now_ms = int(time.time() * 1000)
        try:
            # one MULTI: a reader never sees a bucket's totals and its slices disagree
            async with self.redis.pipeline(transaction=True) as pipe:
                expiries: dict[str, int] = {}
                by_key: dict[str, dict[Any, Any]] = {}  # field -> value
                for (key, field), (value, ttl) in dirty.items():
                    fields = by_key.get(key)
                    if fields is None:
                        fields = by_key[key] = {}
                    fields[field] = value
                    if ttl is not None:
                        expiries[key] = ttl
                for key, fields in by_key.items():  # one HSET per hash: a table has many
                    pipe.hset(key, mapping=fields)
                for key, ttl in expiries.items():
                    pipe.expire(key, ttl + 300)
                if alerts:
                    alert_key = keys.alerts(self.prefix)
                    pipe.zadd(alert_key, {blob: t for t, blob in alerts})
                    pipe.zremrangebyrank(alert_key, 0, -MAX_ALERTS - 1)
                pipe.hset(keys.meta(self.prefix), "written_ms", now_ms)
                pipe.publish(
                    keys.updates_channel(self.prefix),
                    orjson.dumps(
                        {"kind": "updated", "written_ms": now_ms, "groups": _groups(dirty, alerts)}
                    ),
                )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            for item, entry in dirty.items():  # keep newer values written meanwhile
                self._dirty.setdefault(item, entry)
            self._alerts[:0] = alerts
            self.failures += 1
            self._was_down = True
            log.warning("redis snapshot write failed (%s); will retry", exc)
            return False
        self.writes += 1
        self.last_written_ms = now_ms
        if self._was_down:
            self._was_down = False
            self._recovered = True
        return True


def _groups(
    dirty: dict[tuple[str, str], tuple[bytes, int | None]], alerts: list[tuple[int, bytes]]
) -> list[str]:
    names: set[str] = set()
    for key, _ in dirty:
        if ":snap:minute:" in key or ":snap:hour:" in key:
            names.update(("performance", "quality", "health", "summary", "timeseries", "costs"))
        elif ":snap:day:" in key:
            names.add("daily_costs")
        elif key.endswith(":snap:live"):
            names.update(("performance", "health"))
        elif key.endswith(":snap:budgets"):
            names.add("budgets")
    if alerts:
        names.add("alerts")
    return sorted(names)

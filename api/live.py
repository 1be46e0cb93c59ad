"""The worker's "updated" notices, fanned out from one Redis subscription to every SSE client.

Each notice gets an event id that only grows: the notice's own version when it carries one
(`written_ms`, as the worker sends, or `seq`, `version`, `updated_ms`, a bare number), else
its arrival time (epoch ms), and always at least one more than the previous id. Snapshots
are whole state, so a client that resumes with Last-Event-ID needs only the newest snapshot,
sent when its id is older.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def notice_version(data: Any) -> int | None:
    """The version a notice carries, if any."""
    try:
        parsed = orjson.loads(data) if isinstance(data, bytes | str) else data
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, dict):
        for name in ("seq", "version", "written_ms", "updated_ms", "time_ms"):
            value = parsed.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
        return None
    if isinstance(parsed, int) and not isinstance(parsed, bool) and parsed >= 0:
        return parsed
    return None


class UpdateFeed:
    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self.latest_id = time.time_ns() // 1_000_000
        self.connected = False
        self.epoch = 0  # grows with every (re)subscription: notices may be missed in between
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="sse-update-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_newer(self, than: int, timeout_s: float) -> int | None:
        """The latest id once it exceeds `than`; None if nothing newer came within timeout."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.latest_id > than), timeout_s
                )
            return self.latest_id if self.latest_id > than else None

    async def _bump(self, data: Any) -> None:
        version = notice_version(data) or time.time_ns() // 1_000_000
        async with self._changed:
            self.latest_id = max(self.latest_id + 1, version)
            self._changed.notify_all()

    async def _listen(self) -> None:
        delay = 0.2
        lost = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self.epoch += 1
                self.connected = True
                delay = 0.2
                if lost:  # notices may have been missed: have every client refetch
                    lost = False
                    await self._bump(None)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._bump(message.get("data"))
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("lost the Redis subscription (%s); retrying", type(exc).__name__)
                self.connected = False
                lost = True
            finally:
                with contextlib.suppress(Exception):
                    await cast(Any, pubsub).aclose()  # (typed only from redis 8.2 on)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

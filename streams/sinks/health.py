"""Per-sink delivery counts, and the Redis hash that shows them to the health view and the API.

Key `<prefix>:sinks:health` is a Redis hash: one field per sink (e.g. `ga4`,
`webhook:0`), each value a JSON object of that sink's counts (see `SinkStats.snapshot`).
The counts are this process's since it started; `started_ms` tells which process wrote them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

log = logging.getLogger("genpulse.sinks")


def health_key(prefix: str) -> str:
    return f"{prefix}:sinks:health"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SinkStats:
    """What happened to the items one sink was given. Every item ends in exactly one bucket
    (sent, failed, dropped, invalid, duplicate) or is still queued."""

    name: str
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    invalid: int = 0
    duplicate: int = 0
    retries: int = 0
    queued: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    last_error: str = ""
    last_error_ms: int = 0
    last_sent_ms: int = 0
    started_ms: int = field(default_factory=now_ms)
    ready_ms: int | None = None  # feeds only: 0 until positioned on their partitions

    def error(self, message: str) -> None:
        self.last_error = message[:300]
        self.last_error_ms = now_ms()

    def reject(self, reason: str, count: int = 1) -> None:
        """Count items refused before sending (e.g. a GA4 name that breaks GA4's rules)."""
        self.invalid += count
        self.reasons[reason] += count

    def note(self, reason: str, count: int = 1) -> None:
        """Count a repair that still let the item go (e.g. a parameter dropped or cut)."""
        self.reasons[reason] += count

    def snapshot(self) -> dict[str, Any]:
        extra = {} if self.ready_ms is None else {"ready_ms": self.ready_ms}
        return extra | {
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "invalid": self.invalid,
            "duplicate": self.duplicate,
            "retries": self.retries,
            "queued": self.queued,
            "reasons": dict(self.reasons),
            "last_error": self.last_error,
            "last_error_ms": self.last_error_ms,
            "last_sent_ms": self.last_sent_ms,
            "started_ms": self.started_ms,
        }


class HealthPublisher:
    """Writes every sink's counts to the health hash every `interval_s` (and once at stop).

    Redis being down only delays the next write; it never stops a sink.
    """

    def __init__(
        self, redis: aioredis.Redis, prefix: str, stats: list[SinkStats], interval_s: float
    ) -> None:
        self._redis = redis
        self._key = health_key(prefix)
        self._stats = stats
        self._interval_s = interval_s

    async def publish(self) -> None:
        """One write of every sink's counts, stamped `written_ms` so a reader can tell a
        quiet sink (fresh stamp) from a process that stopped writing (old stamp)."""
        written = {"written_ms": now_ms()}
        mapping = {s.name: orjson.dumps(s.snapshot() | written) for s in self._stats}
        if mapping:
            await self._redis.hset(self._key, mapping=dict(mapping))  # type: ignore[arg-type]

    async def run(self) -> None:
        while True:
            try:
                await self.publish()
            except Exception as exc:  # Redis down: try again next tick
                log.warning("sinks health not written: %s", exc)
            await asyncio.sleep(self._interval_s)

    async def final(self) -> None:
        with contextlib.suppress(Exception):
            await self.publish()


async def read_health(redis: aioredis.Redis, prefix: str) -> dict[str, dict[str, Any]]:
    """The health hash as {sink: counts}; what the health view and the tests read."""
    raw = await redis.hgetall(health_key(prefix))
    return {_text(k): orjson.loads(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

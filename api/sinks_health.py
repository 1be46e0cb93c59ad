"""The sinks process's health hash, as the API shows it: counts per sink plus staleness.

`genpulse sinks` rewrites `<prefix>:sinks:health` every `GENPULSE_SINKS_HEALTH_S` (see
streams/sinks/health.py and docs/integrations.md). The counts alone cannot tell a quiet
sink from a dead process, so every entry gets `updated_ms` and `stale`. The hash is read
here rather than through `streams.sinks.read_health`: that import pulls in the whole sinks
package (Datadog client included) and one malformed value would fail the whole answer.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import redis.asyncio as aioredis

log = logging.getLogger("genpulse.api")

STALE_INTERVALS = 3
"""A sink is stale after this many missed health writes (one late write is not an outage)."""

OUTCOMES = ("sent", "failed", "dropped", "invalid", "duplicate")
"""Where each item a sink was given ends (docs/integrations.md); `queued` is still open."""

FRESHNESS_FIELDS = ("written_ms", "last_sent_ms", "last_error_ms", "ready_ms", "started_ms")


def health_key(prefix: str) -> str:
    """Same key as streams.sinks.health.health_key (tests/api/test_sinks_health.py checks)."""
    return f"{prefix}:sinks:health"


def updated_ms(entry: dict[str, Any]) -> int:
    """When the entry was last known current: the writer's `written_ms` if it stamps one,
    else the newest of the entry's own timestamps (then an idle sink ages like a dead one)."""
    written = entry.get("written_ms")
    if isinstance(written, int) and written > 0:
        return written
    stamps = [entry.get(name) for name in FRESHNESS_FIELDS]
    return int(max((s for s in stamps if isinstance(s, int | float)), default=0))


async def read_sinks_health(
    redis: aioredis.Redis, prefix: str, now_ms: int, stale_after_ms: int
) -> dict[str, Any]:
    """The SinksHealth answer. Redis errors propagate (the app answers 503)."""
    raw = await redis.hgetall(health_key(prefix))
    sinks: dict[str, dict[str, Any]] = {}
    for key, value in sorted(raw.items()):
        name = key.decode() if isinstance(key, bytes) else key
        try:
            entry = orjson.loads(value)
        except orjson.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict):
            log.warning("sinks health: entry %r is not a JSON object; skipped", name)
            continue
        updated = updated_ms(entry)
        sinks[name] = entry | {"updated_ms": updated, "stale": now_ms - updated > stale_after_ms}
    newest = max((e["updated_ms"] for e in sinks.values()), default=None)
    return {
        "as_of_ms": now_ms,
        "stale_after_ms": stale_after_ms,
        "updated_ms": newest,
        "stale": bool(sinks) and all(e["stale"] for e in sinks.values()),
        "sinks": sinks,
    }

"""`MetricsReader`: the API's only way into the worker's Redis snapshots.

Partials are stored per source partition and per bucket (docs/snapshots.md); the reader
fetches the buckets a range needs in one pipeline, merges them and derives the views of
streams.views. Ranges are [start_ms, end_ms) aligned to whole minutes (a bucket is in the
range when its minute starts in it); long ranges use hourly rollups for whole hours.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from streams import keys, views
from streams.partial import Partial, Targets

if TYPE_CHECKING:
    import redis.asyncio

HOURLY_FROM_MS = 3 * keys.HOUR_MS  # ranges longer than this read whole hours from rollups


class MetricsReader:
    def __init__(
        self, redis: redis.asyncio.Redis, prefix: str = "genpulse", targets: Targets | None = None
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.targets = targets or Targets()

    # -- fetching -------------------------------------------------------------------------

    def _bucket_keys(self, start_ms: int, end_ms: int) -> list[str]:
        start = keys.floor(start_ms, keys.MINUTE_MS)
        if start_ms % keys.MINUTE_MS:
            start += keys.MINUTE_MS
        if end_ms - start <= HOURLY_FROM_MS:
            return [keys.minute(self.prefix, m) for m in range(start, end_ms, keys.MINUTE_MS)]
        first_hour = -(-start // keys.HOUR_MS) * keys.HOUR_MS
        last_hour = keys.floor(end_ms, keys.HOUR_MS)
        out = [keys.minute(self.prefix, m) for m in range(start, first_hour, keys.MINUTE_MS)]
        out += [keys.hour(self.prefix, h) for h in range(first_hour, last_hour, keys.HOUR_MS)]
        out += [keys.minute(self.prefix, m) for m in range(last_hour, end_ms, keys.MINUTE_MS)]
        return out

    async def _hashes(self, names: list[str]) -> list[dict[bytes, bytes]]:
        if not names:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(name)
            return list(await pipe.execute())

    async def _merged(self, names: list[str]) -> Partial:
        total = Partial()
        for fields in await self._hashes(names):
            for blob in fields.values():
                total.merge(Partial.from_json(orjson.loads(blob)))
        return total

    async def _range(self, start_ms: int, end_ms: int) -> Partial:
        return await self._merged(self._bucket_keys(start_ms, end_ms))

    async def _live(self) -> dict[str, Any]:
        fields = await self.redis.hgetall(keys.live(self.prefix))
        return views.merge_live([orjson.loads(v) for v in fields.values()])

    # -- views ----------------------------------------------------------------------------

    async def performance(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        p = await self._range(start_ms, end_ms)
        out = views.performance(p, await self._live(), (end_ms - start_ms) / 1000, self.targets)
        return {"start_ms": start_ms, "end_ms": end_ms, **out}

    async def costs(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        """CostMetrics of the range, with the global budget's current period (`daily_*`)."""
        p = await self._range(start_ms, end_ms)
        blob = await self.redis.hget(keys.budgets(self.prefix), "global")
        budget = views.daily_budget(orjson.loads(blob) if blob else None)
        return {"start_ms": start_ms, "end_ms": end_ms, **views.costs(p), **budget}

    async def quality(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        p = await self._range(start_ms, end_ms)
        return {"start_ms": start_ms, "end_ms": end_ms, **views.quality(p)}

    async def health(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        p = await self._range(start_ms, end_ms)
        return {"start_ms": start_ms, "end_ms": end_ms, **views.health(p, await self._live())}

    async def summary(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        p = await self._range(start_ms, end_ms)
        return {"start_ms": start_ms, "end_ms": end_ms, **views.summary(p)}

    async def timeseries(
        self, metric: str, start_ms: int, end_ms: int, step_ms: int
    ) -> list[dict[str, Any]]:
        """One point per step: {"time_ms", "value"}; step is rounded up to whole minutes."""
        views.timeseries_value(metric, Partial(), 60.0)  # reject unknown names early
        step = max(keys.MINUTE_MS, -(-step_ms // keys.MINUTE_MS) * keys.MINUTE_MS)
        start = keys.floor(start_ms, keys.MINUTE_MS)
        steps = list(range(start, end_ms, step))
        names = [
            keys.minute(self.prefix, m)
            for s in steps
            for m in range(s, min(s + step, end_ms), keys.MINUTE_MS)
        ]
        hashes = dict(zip(names, await self._hashes(names), strict=True))
        points = []
        for s in steps:
            p = Partial()
            for m in range(s, min(s + step, end_ms), keys.MINUTE_MS):
                for blob in hashes[keys.minute(self.prefix, m)].values():
                    p.merge(Partial.from_json(orjson.loads(blob)))
            value = views.timeseries_value(metric, p, step / 1000)
            points.append({"time_ms": s, "value": value})
        return points

    async def daily_costs(self, from_day: str, to_day: str) -> list[dict[str, Any]]:
        """DailyCostSummary per day, both ends included (days in the worker's time zone)."""
        first, last = date.fromisoformat(from_day), date.fromisoformat(to_day)
        days = [first + timedelta(n) for n in range((last - first).days + 1)]
        hashes = await self._hashes([keys.day(self.prefix, d.isoformat()) for d in days])
        out = []
        for d, fields in zip(days, hashes, strict=True):
            p = Partial()
            for blob in fields.values():
                p.merge(Partial.from_json(orjson.loads(blob)))
            c = views.costs(p, top_users=20)
            out.append(
                {
                    "date": d.isoformat(),
                    "total_cost_nanousd": c["total_cost_nanousd"],
                    "total_cost_usd": c["total_cost_usd"],
                    "total_calls": c["total_calls"],
                    "total_tokens": c["total_tokens"],
                    "unpriced_calls": c["unpriced_calls"],
                    "by_model": c["by_model"],
                    "user_count": c["user_count"],
                    "top_users": c["by_user"],
                    "cost_per_user_usd": c["cost_per_user_usd"],
                    "generations": p.count.get("generation_started", 0),
                }
            )
        return out

    async def budgets(self) -> list[dict[str, Any]]:
        fields = await self.redis.hgetall(keys.budgets(self.prefix))
        return sorted((orjson.loads(v) for v in fields.values()), key=lambda b: b["scope"])

    async def alerts(
        self,
        since_ms: int | None = None,
        severity: str | None = None,
        scope: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first."""
        low: str | int = "-inf" if since_ms is None else since_ms
        raw = await self.redis.zrevrangebyscore(keys.alerts(self.prefix), "+inf", low)
        out = []
        for blob in raw:
            alert = orjson.loads(blob)  # type: ignore[arg-type]
            if severity is not None and alert.get("severity") != severity:
                continue
            if scope is not None and alert.get("scope") != scope:
                continue
            out.append(alert)
            if len(out) >= limit:
                break
        return out

    async def recent_errors(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, across partitions."""
        return list((await self._live())["errors"][:limit])

"""MetricsReader against real Redis: partitions merge, long ranges use hourly rollups and give
the same numbers, time series steps, daily costs, alert filters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis

from streams import keys
from streams.partial import Partial, Targets
from streams.reader import MetricsReader

pytestmark = pytest.mark.integration
HOUR = keys.HOUR_MS
T0 = 1_764_115_200_000  # 2025-11-26T00:00:00Z, a whole day


def partial(started: int, cost: int, ttfb: float) -> Partial:
    p = Partial()
    for _ in range(started):
        p.add_event("generation_started", {}, Targets())
        p.add_event("first_byte", {"elapsed_ms": ttfb}, Targets())
    p.add_event(
        "model_called", {"model": "m", "input_tokens": 1, "output_tokens": 1,
                               "cost_nanousd": cost}, Targets(),
    )  # fmt: skip
    return p


@pytest.fixture
async def loaded(redis_url: str, unique: str) -> AsyncIterator[MetricsReader]:
    client = aioredis.from_url(redis_url)
    prefix = f"rt-{unique}"
    hours: dict[int, Partial] = {}
    day = Partial()
    async with client.pipeline(transaction=False) as pipe:
        for minute in range(0, 6 * 60):  # six hours, two partitions
            start = T0 + minute * 60_000
            for field, p in (
                ("events:0", partial(1, 10, 100.0)),
                ("events:1", partial(2, 5, 900.0)),
            ):
                blob = orjson.dumps(p.to_json())
                pipe.hset(keys.minute(prefix, start), field, blob)
                hours.setdefault(start - start % HOUR, Partial()).merge(p)
                day.merge(p)
        for hour, p in hours.items():
            pipe.hset(keys.hour(prefix, hour), "events:0", orjson.dumps(p.to_json()))
        pipe.hset(keys.day(prefix, "2025-11-26"), "events:0", orjson.dumps(day.to_json()))
        alerts = [{"id": f"a{i}", "severity": "warning" if i % 2 else "critical",
                   "scope": "global", "time_ms": T0 + i} for i in range(5)]  # fmt: skip
        pipe.zadd(keys.alerts(prefix), {orjson.dumps(a): a["time_ms"] for a in alerts})
        await pipe.execute()
    yield MetricsReader(client, prefix)
    async for key in client.scan_iter(f"{prefix}:*"):
        await client.delete(key)
    await client.aclose()


async def test_partitions_merge_and_hourly_rollups_agree(loaded: MetricsReader) -> None:
    short = await loaded.summary(T0, T0 + HOUR)
    assert short["total_generations"] == 60 * 3
    assert short["total_cost_nanousd"] == 60 * 15
    whole = await loaded.summary(T0, T0 + 6 * HOUR)  # > 3 h: hourly rollups
    assert whole["total_generations"] == 360 * 3
    edges = await loaded.summary(T0 + 30 * 60_000, T0 + 5 * HOUR + 30 * 60_000)
    assert edges["total_generations"] == 300 * 3  # half hours at the edges come from minutes
    perf = await loaded.performance(T0, T0 + 6 * HOUR)
    assert perf["time_to_first_byte"]["within_target_count"] == 360
    assert perf["time_to_first_byte"]["within_target_rate"] == pytest.approx(1 / 3)
    assert perf["requests_per_second"] == pytest.approx(1080 / (6 * 3600))


async def test_timeseries_daily_costs_and_alerts(loaded: MetricsReader) -> None:
    points = await loaded.timeseries("generations", T0, T0 + 10 * 60_000, 5 * 60_000)
    assert [p["value"] for p in points] == [15, 15]
    p95 = await loaded.timeseries("p95_time_to_first_byte_ms", T0, T0 + 60_000, 60_000)
    assert p95[0]["value"] == pytest.approx(900, rel=0.01)
    with pytest.raises(ValueError):
        await loaded.timeseries("nonsense", T0, T0 + 60_000, 60_000)
    days = await loaded.daily_costs("2025-11-25", "2025-11-26")
    assert [d["total_cost_nanousd"] for d in days] == [0, 360 * 15]
    assert days[1]["total_cost_usd"] == "0.0000054"
    newest = await loaded.alerts(limit=2)
    assert [a["id"] for a in newest] == ["a4", "a3"]
    assert [a["id"] for a in await loaded.alerts(severity="critical")] == ["a4", "a2", "a0"]
    assert [a["id"] for a in await loaded.alerts(since_ms=T0 + 3)] == ["a4", "a3"]
    assert await loaded.budgets() == []

"""Redis down: the worker keeps aggregating and writes complete, current state when Redis is
back. Alert rules: a latency SLO fires once and resolves; an error-rate rule fires."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from genpulse.devservices import start_redis
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.streams.helpers import WorkerProcess, encode, event, produce, read_topic, wait_for

pytestmark = pytest.mark.integration


def generations(ts: int, n: int, tag: str, ttfb_ms: float, failed: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        sid = f"{tag}-{i}"
        out.append(event("generation_started", ts, sid))
        out.append(event("first_byte", ts + 1, sid, elapsed_ms=ttfb_ms))
        end = "generation_failed" if i < failed else "generation_completed"
        out.append(event(end, ts + 2, sid, duration_ms=100.0))
    return out


async def test_worker_keeps_counting_while_redis_is_down(
    worker_settings: WorkerSettings, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    server = start_redis(tmp_path / "redis")
    s = worker_settings.model_copy(update={"redis_url": server.url})
    await ensure_topics(s)
    worker = WorkerProcess(s, tmp_path, "w0").start()
    workers.append(worker)
    now = int(time.time() * 1000)
    client = aioredis.from_url(server.url)
    reader = MetricsReader(client, s.key_prefix)
    window = (now - 3_600_000, now + 3_600_000)
    try:
        earlier = now - 5 * 60_000  # a minute (and row) that nothing touches after the outage
        await produce(
            s.kafka_bootstrap, s.topic("events"), encode(generations(earlier, 100, "a", 50))
        )

        async def started(n: int) -> bool:
            return (await reader.summary(*window))["total_generations"] == n

        await wait_for(lambda: started(100), 90, "first 100", [worker])
        port = server.port
        server.stop()
        await produce(s.kafka_bootstrap, s.topic("events"), encode(generations(now, 250, "b", 50)))
        time.sleep(3)  # the worker aggregates (and fails to write) meanwhile
        assert worker.alive()
        server = start_redis(tmp_path / "redis2", port=port)  # empty: all rows are rewritten
        await client.aclose()
        client = aioredis.from_url(server.url)
        reader = MetricsReader(client, s.key_prefix)
        await wait_for(lambda: started(350), 90, "all 350 after Redis returned", [worker])
        assert worker.alive()
    finally:
        await client.aclose()
        server.stop()


async def test_latency_slo_fires_once_and_resolves_error_rate_fires(
    worker_settings: WorkerSettings, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    s = worker_settings
    await ensure_topics(s)
    now = int(time.time() * 1000)
    minute = now - now % 60_000 - 10 * 60_000
    rules = [
        {"v": 1, "kind": "alert_rule", "id": "ttfb-p95", "type": "latency_slo",
         "metric": "time_to_first_byte_ms", "quantile": 0.95, "threshold": 500,
         "window_s": 60, "min_count": 20, "severity": "warning", "enabled": True},
        {"v": 1, "kind": "alert_rule", "id": "errors", "type": "error_rate",
         "threshold": 0.2, "window_s": 120, "min_count": 10, "severity": "critical"},
    ]  # fmt: skip
    await produce(
        s.kafka_bootstrap,
        s.topic("control"),
        [(f"rule:{r['id']}".encode(), orjson.dumps(r)) for r in rules],
    )
    worker = WorkerProcess(s, tmp_path, "w0").start()
    workers.append(worker)

    async def alerts(n: int) -> list[dict] | None:
        got = [
            orjson.loads(r.value)
            for r in await read_topic(s.kafka_bootstrap, s.topic("alerts"), 500)
        ]
        return got if len(got) >= n else None

    # minute 0: fast; minute 1: slow (p95 900 ms) and 50 % failures; minute 3: fast again
    await produce(s.kafka_bootstrap, s.topic("events"), encode(generations(minute, 30, "m0", 80)))
    await produce(
        s.kafka_bootstrap,
        s.topic("events"),
        encode(generations(minute + 60_000, 30, "m1", 900, failed=15)),
    )
    fired = await wait_for(lambda: alerts(2), 90, "two fired alerts", [worker])
    assert sorted((a["rule"], a["status"]) for a in fired) == [
        ("errors", "fired"),
        ("ttfb-p95", "fired"),
    ]
    await produce(
        s.kafka_bootstrap, s.topic("events"), encode(generations(minute + 240_000, 30, "m4", 80))
    )
    done = await wait_for(lambda: alerts(4), 90, "both resolved", [worker])
    by_rule = {(a["rule"], a["status"]): a for a in done}
    assert set(by_rule) == {
        ("errors", "fired"),
        ("errors", "resolved"),
        ("ttfb-p95", "fired"),
        ("ttfb-p95", "resolved"),
    }
    assert by_rule[("ttfb-p95", "fired")]["id"] == by_rule[("ttfb-p95", "resolved")]["id"]
    assert by_rule[("ttfb-p95", "fired")]["value"] > 500
    # evaluated as roll-ups arrive: between 15/60 (both minutes seen) and 15/30 (only the bad one)
    assert 0.2 < by_rule[("errors", "fired")]["value"] <= 0.5


async def test_rows_past_retention_leave_the_changelog(
    worker_settings: WorkerSettings, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    s = worker_settings
    await ensure_topics(s)
    worker = WorkerProcess(s, tmp_path, "w0", GENPULSE_MINUTE_RETENTION_S="300").start()
    workers.append(worker)
    now = int(time.time() * 1000)
    old = now - 20 * 60_000
    old_minute = old - old % 60_000
    same_session = [
        event("generation_started", old, "one"),
        event("generation_started", now, "one"),
    ]
    row = f"c:m:{old_minute}:".encode()  # the minute's cell row(s), docs/slicing.md

    async def changelog(value_is_none: bool) -> bool:
        records = await read_topic(s.kafka_bootstrap, s.internal_topic("events-changelog"), 500)
        return any(
            (r.key or b"").startswith(row) and (r.value is None) == value_is_none for r in records
        )

    await produce(s.kafka_bootstrap, s.topic("events"), encode(same_session[:1]))
    await wait_for(lambda: changelog(False), 90, "the old minute row", [worker])
    await produce(s.kafka_bootstrap, s.topic("events"), encode(same_session[1:]))

    async def tombstoned() -> bool:
        return await changelog(True)

    await wait_for(tombstoned, 90, "a tombstone for the expired minute row", [worker])

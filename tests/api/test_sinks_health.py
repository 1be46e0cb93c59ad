"""GET /v1/health/sinks and the sink families of /metrics, from the health hash that
`genpulse sinks` writes (here written by its own HealthPublisher, or raw for odd entries)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from unittest import mock

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client.utils import floatToGoString as go

from api.app import create_app
from api.settings import ApiSettings
from api.sinks_health import OUTCOMES, health_key
from genpulse.devservices import free_port
from streams.sinks.health import HealthPublisher, SinkStats
from streams.sinks.health import health_key as writer_key
from tests.api.conftest import auth

OLD_MS = 1_764_000_000_000  # long before the test runs


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
async def redis(api_settings: ApiSettings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(api_settings.redis_url)
    try:
        yield client
    finally:
        await client.delete(health_key(api_settings.key_prefix))
        await client.aclose()


async def publish(redis: aioredis.Redis, prefix: str, started_ms: int, written_ms: int) -> None:
    """Two exporters and a feed, written by the sinks process's own publisher at
    `written_ms` (its clock stubbed, so a test can write as a process that died long ago)."""
    ga4 = SinkStats("ga4", sent=31, invalid=2, started_ms=started_ms)
    ga4.reasons.update({"event_name_reserved_prefix": 1, "param_value_truncated": 1})
    ga4.last_sent_ms = started_ms + 900
    hook = SinkStats("webhook:slack:0123456789", started_ms=started_ms)
    hook.failed, hook.dropped, hook.retries, hook.queued = 3, 5, 12, 4
    hook.last_error, hook.last_error_ms = "ConnectError: refused", started_ms + 800
    feed = SinkStats("feed:events", sent=40, started_ms=started_ms)
    feed.ready_ms = started_ms + 100
    with mock.patch("streams.sinks.health.now_ms", return_value=written_ms):
        await HealthPublisher(redis, prefix, [ga4, hook, feed], 2.0).publish()


def test_the_api_reads_the_key_the_sinks_process_writes() -> None:
    assert health_key("gp") == writer_key("gp") == "gp:sinks:health"


async def test_no_sinks_process_gives_an_empty_answer_and_empty_families(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    before = now_ms()
    response = await client.get("/v1/health/sinks", headers=auth("read"))
    assert response.status_code == 200
    body = response.json()
    assert before <= body.pop("as_of_ms") <= now_ms()
    assert body == {"stale_after_ms": 6000, "updated_ms": None, "stale": False, "sinks": {}}

    text = (await client.get("/metrics", headers=auth("admin"))).text
    sink_lines = [line for line in text.splitlines() if "genpulse_sink_" in line]
    assert [line for line in sink_lines if not line.startswith("#")] == []
    assert "# TYPE genpulse_sink_items_total counter" in sink_lines
    assert "# TYPE genpulse_sink_queued gauge" in sink_lines


async def test_counts_as_the_sinks_process_wrote_them_in_the_route_and_metrics(
    client: httpx.AsyncClient, redis: aioredis.Redis, api_settings: ApiSettings
) -> None:
    started = now_ms() - 1000
    written = started + 1000
    await publish(redis, api_settings.key_prefix, started, written)

    response = await client.get("/v1/health/sinks", headers=auth("read"))
    assert response.status_code == 200
    body = response.json()
    assert body["as_of_ms"] >= started + 1000
    zero = {"sent": 0, "failed": 0, "dropped": 0, "invalid": 0, "duplicate": 0, "retries": 0}
    empty = {"queued": 0, "reasons": {}, "last_error": "", "last_error_ms": 0, "last_sent_ms": 0}
    assert body["sinks"] == {
        "feed:events": {
            **zero,
            **empty,
            "sent": 40,
            "ready_ms": started + 100,
            "started_ms": started,
            "written_ms": written,
            "updated_ms": written,
            "stale": False,
        },
        "ga4": {
            **zero,
            **empty,
            "sent": 31,
            "invalid": 2,
            "reasons": {"event_name_reserved_prefix": 1, "param_value_truncated": 1},
            "last_sent_ms": started + 900,
            "started_ms": started,
            "written_ms": written,
            "updated_ms": written,
            "stale": False,
        },
        "webhook:slack:0123456789": {
            **zero,
            **empty,
            "failed": 3,
            "dropped": 5,
            "retries": 12,
            "queued": 4,
            "last_error": "ConnectError: refused",
            "last_error_ms": started + 800,
            "started_ms": started,
            "written_ms": written,
            "updated_ms": written,
            "stale": False,
        },
    }
    assert list(body["sinks"]) == sorted(body["sinks"])
    assert body["updated_ms"] == written
    assert (body["stale"], body["stale_after_ms"]) == (False, 6000)

    text = (await client.get("/metrics", headers=auth("read"))).text
    samples = [line for line in text.splitlines() if line.startswith("genpulse_sink_")]
    expected = []
    for sink, counts in (
        ("feed:events", (40, 0, 0, 0, 0)),
        ("ga4", (31, 0, 0, 2, 0)),
        ("webhook:slack:0123456789", (0, 3, 5, 0, 0)),
    ):
        for outcome, n in zip(OUTCOMES, counts, strict=True):
            expected.append(f'genpulse_sink_items_total{{outcome="{outcome}",sink="{sink}"}} {n}.0')
    expected += [
        'genpulse_sink_retries_total{sink="feed:events"} 0.0',
        'genpulse_sink_retries_total{sink="ga4"} 0.0',
        'genpulse_sink_retries_total{sink="webhook:slack:0123456789"} 12.0',
        'genpulse_sink_reasons_total{reason="event_name_reserved_prefix",sink="ga4"} 1.0',
        'genpulse_sink_reasons_total{reason="param_value_truncated",sink="ga4"} 1.0',
        'genpulse_sink_queued{sink="feed:events"} 0.0',
        'genpulse_sink_queued{sink="ga4"} 0.0',
        'genpulse_sink_queued{sink="webhook:slack:0123456789"} 4.0',
        'genpulse_sink_stale{sink="feed:events"} 0.0',
        'genpulse_sink_stale{sink="ga4"} 0.0',
        'genpulse_sink_stale{sink="webhook:slack:0123456789"} 0.0',
        # Prometheus text writes large floats the way Go does (1.795685513858e+09)
        f'genpulse_sink_last_sent_timestamp_seconds{{sink="ga4"}} {go((started + 900) / 1000)}',
    ]
    assert samples == expected


async def test_a_dead_sinks_process_shows_as_stale(
    client: httpx.AsyncClient, redis: aioredis.Redis, api_settings: ApiSettings
) -> None:
    await publish(redis, api_settings.key_prefix, OLD_MS, OLD_MS + 1000)
    body = (await client.get("/v1/health/sinks", headers=auth("admin"))).json()
    assert body["stale"] is True and body["updated_ms"] == OLD_MS + 1000
    assert {name: e["stale"] for name, e in body["sinks"].items()} == {
        "feed:events": True,
        "ga4": True,
        "webhook:slack:0123456789": True,
    }
    text = (await client.get("/metrics", headers=auth("read"))).text
    assert 'genpulse_sink_stale{sink="ga4"} 1.0' in text.splitlines()


async def test_written_ms_wins_unknown_fields_pass_and_bad_entries_are_skipped(
    client: httpx.AsyncClient, redis: aioredis.Redis, api_settings: ApiSettings
) -> None:
    written = now_ms()
    key = health_key(api_settings.key_prefix)
    quiet = {"sent": 1, "last_sent_ms": OLD_MS, "started_ms": OLD_MS, "written_ms": written}
    await redis.hset(
        key,
        mapping={
            "quiet": orjson.dumps(quiet | {"future_field": {"x": 1}}),
            "gone": orjson.dumps({"sent": 2, "started_ms": OLD_MS}),
            "broken": b"{not json",
            "scalar": b"7",
        },
    )
    body = (await client.get("/v1/health/sinks", headers=auth("read"))).json()
    assert set(body["sinks"]) == {"gone", "quiet"}
    assert body["sinks"]["quiet"]["future_field"] == {"x": 1}
    assert body["sinks"]["quiet"]["updated_ms"] == written
    assert body["sinks"]["quiet"]["stale"] is False
    assert body["sinks"]["gone"]["stale"] is True
    assert body["sinks"]["gone"]["dropped"] == 0  # fields the writer left out read as 0
    assert body["stale"] is False and body["updated_ms"] == written


async def test_the_stale_window_follows_the_sinks_health_interval(
    api_settings: ApiSettings, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENPULSE_SINKS_HEALTH_S", "10")
    assert ApiSettings().sinks_stale_after_ms == 30_000
    settings = api_settings.model_copy(update={"sinks_health_s": 0.5})
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        await publish(redis, settings.key_prefix, now_ms() - 10_000, now_ms() - 9_000)
        body = (await http.get("/v1/health/sinks", headers=auth("read"))).json()
    assert body["stale_after_ms"] == 1500 and body["stale"] is True


async def test_redis_down_answers_503(api_settings: ApiSettings) -> None:
    settings = api_settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "api_redis_timeout_s": 1.0}
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        for path in ("/v1/health/sinks", "/metrics"):
            response = await http.get(path, headers=auth("read"))
            assert response.status_code == 503, path
            assert response.json()["error"] == "redis_unavailable"
            assert response.headers["Retry-After"] == "2"

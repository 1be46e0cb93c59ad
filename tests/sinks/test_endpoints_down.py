"""Every endpoint down, tiny queues: the feeds still read everything at once (nothing waits
on a dead endpoint), each sink keeps at most its queue, and the health hash counts drops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from producers.events import EventType
from streams.sinks import SinkSettings, read_health
from tests.sinks.endpoints import HttpRecorder, closed_port, wait_until
from tests.sinks.harness import produce_events, produce_json, running
from tests.sinks.test_webhooks import alert
from tests.unit.test_contract import make_event

EVENTS = 400
ALERTS = 30
QUEUE = 5


async def test_dead_endpoints_never_stall_the_feeds(
    sink_settings: Callable[..., SinkSettings], redis: aioredis.Redis, tmp_path: Path
) -> None:
    dead_http = f"http://127.0.0.1:{closed_port()}"
    settings = sink_settings(
        dogstatsd_enabled=True,
        dogstatsd_socket=str(tmp_path / "no-agent.sock"),
        datadog_series_enabled=True,
        datadog_events_enabled=True,
        datadog_api_key="dd-key",
        datadog_api_url=dead_http,
        datadog_quality_wait_s=0,
        ga4_measurement_id="G-DOWN",
        ga4_api_secret="s",
        ga4_endpoint=dead_http,
        webhook_slack_urls=f"{dead_http}/slack",
        webhook_plain_urls=f"{dead_http}/plain",
        sinks_queue_size=QUEUE,
        # slow retries: a design that waited on them would need many minutes for this test
        sinks_backoff_s=2.0,
        sinks_backoff_max_s=10.0,
        sinks_max_attempts=5,
    )
    kinds = [
        EventType.GENERATION_STARTED,
        EventType.MODEL_CALLED,
        EventType.CACHE_HIT,
        EventType.CACHE_MISS,
        EventType.ERROR_OCCURRED,
        EventType.GENERATION_COMPLETED,
    ]
    events = [
        make_event(kinds[i % 6], session_id=f"s-{i // 6}", user_id=f"u-{i % 7}")
        for i in range(EVENTS)
    ]
    alerts = [alert(id=f"rule:r{i}") for i in range(ALERTS)]
    async with running(settings) as sinks:
        await produce_events(settings, events)
        await produce_json(settings, "alerts", alerts)

        async def everything_read() -> bool:
            health = await read_health(redis, settings.topic_prefix)
            return (
                health.get("feed:events", {}).get("sent") == EVENTS
                and health.get("feed:alerts", {}).get("sent") == ALERTS
            )

        await wait_until(everything_read, timeout_s=60, what="the feeds to read every record")
        sink_names = [n for n in await sinks.health() if not n.startswith("feed:")]

        async def drops_shown() -> bool:
            health = await read_health(redis, settings.topic_prefix)
            return all(
                health.get(n, {}).get("dropped", 0) > 0 and health[n]["last_error"]
                for n in sink_names
            )

        await wait_until(drops_shown, timeout_s=60, what="every sink to show drops and its error")
        health = await read_health(redis, settings.topic_prefix)

    assert len(sink_names) == 6  # dogstatsd, series, events, ga4, two webhooks
    for name in sink_names:
        counts: dict[str, Any] = health[name]
        assert counts["sent"] == 0, name
        assert counts["queued"] <= 2 * QUEUE, name  # waiting + the batch being retried
        assert counts["dropped"] > 0, (name, counts)
        assert counts["last_error"], name


async def test_a_hanging_endpoint_times_out_and_never_stalls_the_feed(
    sink_settings: Callable[..., SinkSettings], redis: aioredis.Redis
) -> None:
    slow = await HttpRecorder(delay_s=3).start()  # ten times the timeout
    try:
        settings = sink_settings(
            ga4_measurement_id="G-SLOW",
            ga4_api_secret="s",
            ga4_endpoint=slow.base_url,
            sinks_http_timeout_s=0.3,
            sinks_queue_size=QUEUE,
            sinks_max_attempts=2,
        )
        events = [make_event(EventType.UVP_APPROVED, user_id=f"u-{i}") for i in range(100)]
        async with running(settings):
            await produce_events(settings, events)

            async def read_and_timed_out() -> bool:
                health = await read_health(redis, settings.topic_prefix)
                ga4 = health.get("ga4", {})
                return (
                    health.get("feed:events", {}).get("sent") == len(events)
                    and ga4.get("failed", 0) > 0
                    and ga4.get("dropped", 0) > 0
                )

            await wait_until(read_and_timed_out, timeout_s=60, what="timeouts counted")
            health = await read_health(redis, settings.topic_prefix)
        assert "TimeoutError" in health["ga4"]["last_error"]
        assert health["ga4"]["sent"] == 0
    finally:
        await slow.stop()

"""`genpulse sinks` as its own process: delivers, drains and stops cleanly on SIGTERM, leaves
its health."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable

import redis.asyncio as aioredis

from producers.events import EventType
from streams.sinks import SinkSettings, read_health
from tests.sinks.endpoints import HttpRecorder, wait_until
from tests.sinks.harness import create_topics, produce_events, produce_json
from tests.sinks.test_webhooks import alert
from tests.unit.test_contract import make_event


async def test_the_sinks_command_delivers_and_stops_on_sigterm(
    sink_settings: Callable[..., SinkSettings], http: HttpRecorder, redis: aioredis.Redis
) -> None:
    settings = sink_settings()
    await create_topics(settings)
    env = {
        **os.environ,
        "GENPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GENPULSE_REDIS_URL": settings.redis_url,
        "GENPULSE_TOPIC_PREFIX": settings.topic_prefix,
        "GENPULSE_SINKS_START": "earliest",
        "GENPULSE_SINKS_HEALTH_S": "0.2",
        "GENPULSE_WEBHOOK_PLAIN_URLS": f"{http.base_url}/hook",
        # a completed generation waits a minute for its score: only a clean stop sends it
        "GENPULSE_DATADOG_EVENTS_ENABLED": "1",
        "GENPULSE_DATADOG_API_KEY": "dd-key",
        "GENPULSE_DATADOG_API_URL": http.base_url,
        "GENPULSE_DATADOG_QUALITY_WAIT_S": "60",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "genpulse.cli", "sinks", "--log-level", "warning"], env=env
    )
    try:
        await produce_json(settings, "alerts", [alert()])
        await produce_events(settings, [make_event(EventType.GENERATION_COMPLETED, data={})])
        await wait_until(lambda: http.to("/hook"), timeout_s=60, what="the alert at the webhook")

        async def counted() -> bool:
            health = await read_health(redis, settings.topic_prefix)
            return health.get("feed:events", {}).get("sent") == 1 and any(
                name.startswith("webhook:plain:") and counts["sent"] == 1
                for name, counts in health.items()
            )

        await wait_until(counted, what="the delivery in the health hash")
        assert not http.to("/api/v1/events")  # still waiting for a score
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0
    assert [r.body for r in http.to("/hook")] == [alert()]
    assert len(http.to("/api/v1/events")) == 1  # drained at the stop
    shown = subprocess.run(
        [sys.executable, "-m", "genpulse.cli", "sinks", "--status"],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    health = json.loads(shown.stdout)
    assert health["feed:alerts"]["sent"] == 1
    assert health["datadog_events"]["sent"] == 1

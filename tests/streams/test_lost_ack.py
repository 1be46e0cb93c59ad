"""The SDK loses acknowledgements of records the broker wrote; each event still counts once.

A broker of its own sits behind tests/kafka_proxy.py, which turns the answers to three of
the SDK's Produce requests into a non-retriable error after the broker has written them.
The SDK then resends those records through a fresh producer (`resent_uncertain`), so the
events topic really holds second copies; the worker must count every event once and report
the copies it dropped as `duplicates`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from genpulse.devservices.kafka import start_kafka
from genpulse.devservices.ports import free_port
from producers import GenPulse
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from tests.kafka_proxy import KafkaProxy
from tests.streams.helpers import WorkerProcess, read_topic, wait_for

EVENTS = 400
LOST = 3


@pytest.mark.integration
@pytest.mark.timeout(300)
async def test_events_whose_ack_was_lost_are_resent_and_counted_once(
    redis_url: str, unique: str, tmp_path: Path
) -> None:
    broker_port, proxy_port = free_port(), free_port()
    with KafkaProxy(proxy_port, broker_port, client_id="genpulse-lost-ack") as proxy:
        server = await asyncio.to_thread(
            start_kafka, tmp_path / "kafka", broker_port, None, "384m", proxy_port
        )
        settings = WorkerSettings(
            kafka_bootstrap=server.bootstrap,
            redis_url=redis_url,
            topic_prefix=f"la-{unique}",
            app_id=f"la-{unique}",
            snapshot_interval_s=0.5,
        )
        worker = WorkerProcess(settings, tmp_path, "w0").start()  # creates the topics
        pulse = GenPulse(
            service="lost-ack",
            bootstrap_servers=server.bootstrap,
            topic_prefix=settings.topic_prefix,
            follow_budget_state=False,
            retry_max_backoff_s=0.5,
            flush_at=50,
        )
        redis = aioredis.from_url(redis_url)
        reader = MetricsReader(redis, settings.key_prefix)
        try:
            pulse.events.track("cache_hit", {}, session_id="warm-up")
            deadline = time.monotonic() + 120  # the topics appear when the worker is up
            while not pulse.flush(timeout=2):
                assert worker.alive(), worker.log_tail()
                assert time.monotonic() < deadline, pulse.stats()
            proxy.lose_next(LOST)
            for i in range(EVENTS):
                pulse.events.track("cache_hit", {}, session_id=f"s-{i % 40}", user_id="u1")
            assert pulse.flush(timeout=60), pulse.stats()

            stats = pulse.stats()
            assert proxy.lost() == LOST, (proxy.lost(), stats)
            assert stats.sent == EVENTS + 1 and stats.dropped == 0 and stats.failed == 0
            assert stats.resent_uncertain > 0, stats  # the copies really went out again
            records = await read_topic(server.bootstrap, settings.topic("events"))
            copies = len(records) - (EVENTS + 1)
            # a resend may itself be answered with an error, written or not: at most that many
            assert 0 < copies <= stats.resent_uncertain, (len(records), stats)

            now = int(time.time() * 1000)
            window = (now - 3_600_000, now + 3_600_000)

            async def counted() -> bool:
                summary = await reader.summary(*window)
                health = await reader.health(*window)
                return bool(summary["events"] == EVENTS + 1 and health["duplicates"] == copies)

            await wait_for(counted, 90, "each event counted once, the copies dropped", [worker])
        finally:
            pulse.close(timeout=5)
            worker.stop()
            await redis.aclose()
            server.stop()

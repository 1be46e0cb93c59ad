"""Fixtures for the sinks: local endpoints and settings on this test's private topics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from producers.settings import GenPulseSettings
from streams.sinks import SinkSettings
from tests.sinks.endpoints import HttpRecorder, UdpListener

FAST_RETRY = {"sinks_backoff_s": 0.05, "sinks_backoff_max_s": 0.2, "sinks_max_attempts": 3}


@pytest.fixture
async def http() -> AsyncIterator[HttpRecorder]:
    recorder = await HttpRecorder().start()
    yield recorder
    await recorder.stop()


@pytest.fixture
async def udp() -> AsyncIterator[UdpListener]:
    listener = await UdpListener().start()
    yield listener
    listener.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def sink_settings(settings: GenPulseSettings, redis_url: str) -> Callable[..., SinkSettings]:
    """SinkSettings on this test's private topics and Redis prefix, reading from the start."""

    def make(**overrides: Any) -> SinkSettings:
        values: dict[str, Any] = {
            "kafka_bootstrap": settings.kafka_bootstrap,
            "topic_prefix": settings.topic_prefix,
            "redis_url": redis_url,
            "env": "test",
            "sinks_start": "earliest",
            "sinks_health_s": 0.2,
            "datadog_flush_s": 0.5,
            "datadog_quality_wait_s": 0.5,
            "sinks_aggregates": False,  # test_aggregates.py covers the poller
            **FAST_RETRY,
        }
        values.update(overrides)
        return SinkSettings(**values)

    return make

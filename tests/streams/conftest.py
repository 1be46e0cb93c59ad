"""Fixtures of the worker tests: private topic prefix, app id and Redis key prefix per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from tests.streams.helpers import WorkerProcess


@pytest.fixture
def worker_settings(kafka_bootstrap: str, redis_url: str, unique: str) -> WorkerSettings:
    return WorkerSettings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=f"wt-{unique}",
        app_id=f"wt-{unique}",
        snapshot_interval_s=0.5,
    )


@pytest.fixture
async def reader(worker_settings: WorkerSettings) -> AsyncIterator[MetricsReader]:
    client = aioredis.from_url(worker_settings.redis_url)
    yield MetricsReader(client, worker_settings.key_prefix)
    await client.aclose()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Worker processes a test started; all stopped at the end."""
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()

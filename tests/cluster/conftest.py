"""Fixtures of the cluster tests: settings on the shared 3-broker cluster (replication 3,
min.insync.replicas 2), a reader of their snapshots, the workers a test started."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from genpulse.devservices import KafkaCluster
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from tests.streams.helpers import WorkerProcess


@pytest.fixture
def cluster_settings(kafka_cluster: KafkaCluster, redis_url: str, unique: str) -> WorkerSettings:
    return WorkerSettings(
        kafka_bootstrap=kafka_cluster.bootstrap,
        redis_url=redis_url,
        topic_prefix=f"ct-{unique}",
        app_id=f"ct-{unique}",
        snapshot_interval_s=0.5,
        topic_replication=3,
        topic_min_insync=2,
    )


@pytest.fixture
async def cluster_reader(cluster_settings: WorkerSettings) -> AsyncIterator[MetricsReader]:
    client = aioredis.from_url(cluster_settings.redis_url)
    yield MetricsReader(client, cluster_settings.key_prefix)
    await client.aclose()


@pytest.fixture
def cluster_workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


@pytest.fixture
def healed(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The cluster, with every node it lost brought back after the test."""
    yield kafka_cluster
    for node in kafka_cluster.nodes:
        kafka_cluster.restart(node.node_id)

"""Fixtures of the cluster tests: settings on the shared 3-broker cluster, topics made with
the replication the test asks for (until streams/topics.py takes it as a setting)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from genpulse.devservices import KafkaCluster
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from tests.streams.helpers import WorkerProcess

COMPACT = {"cleanup.policy": "compact"}


async def create_topics(s: WorkerSettings, replication: int, min_insync: int) -> None:
    """Every topic the worker uses (the names and partitions of streams/topics.py), with
    `replication` copies and `min.insync.replicas` = `min_insync`."""
    n = s.topic_partitions
    plan: list[tuple[str, int, dict[str, str]]] = [
        (s.topic("events"), n, {}),
        (s.topic("metrics"), n, {}),
        (s.topic("control"), 1, COMPACT),
        (s.topic("budget-state"), 1, COMPACT),
        (s.topic("alerts"), 1, {}),
        (s.topic("dlq"), n, {}),
        (s.internal_topic("rollup"), 1, {}),
        (s.internal_topic("controller-changelog"), 1, COMPACT),
        (s.internal_topic("events-changelog"), n, COMPACT),
        (s.internal_topic("metrics-changelog"), n, COMPACT),
        (f"{s.app_id}-__assignor-__leader", 1, {}),
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        isr = {"min.insync.replicas": str(min_insync)}
        await admin.create_topics(
            [NewTopic(name, n, replication, topic_configs={**c, **isr}) for name, n, c in plan]
        )
    finally:
        await admin.close()


@pytest.fixture
def cluster_settings(kafka_cluster: KafkaCluster, redis_url: str, unique: str) -> WorkerSettings:
    return WorkerSettings(
        kafka_bootstrap=kafka_cluster.bootstrap,
        redis_url=redis_url,
        topic_prefix=f"ct-{unique}",
        app_id=f"ct-{unique}",
        snapshot_interval_s=0.5,
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

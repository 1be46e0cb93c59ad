"""Creates the topics the worker reads and writes, with the partition counts it relies on."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import WorkerSettings

COMPACT = {"cleanup.policy": "compact"}


async def ensure_topics(settings: WorkerSettings) -> dict[str, int]:
    """Create missing topics; returns the partition count of events and metrics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        n = settings.topic_partitions
        wanted = [
            NewTopic(settings.topic("events"), n, 1),
            NewTopic(settings.topic("metrics"), n, 1),
            NewTopic(settings.topic("control"), 1, 1, topic_configs=COMPACT),
            NewTopic(settings.topic("budget-state"), 1, 1, topic_configs=COMPACT),
            NewTopic(settings.topic("alerts"), 1, 1),
            NewTopic(settings.topic("dlq"), n, 1),
            NewTopic(settings.internal_topic("rollup"), 1, 1),
            NewTopic(settings.internal_topic("controller-changelog"), 1, 1, topic_configs=COMPACT),
        ]
        await _create(admin, wanted)
        sources = ("events", "metrics", "dlq")
        counts = await _partitions(admin, [settings.topic(kind) for kind in sources])
        await _create(
            admin,
            [
                NewTopic(
                    settings.internal_topic(f"{kind}-changelog"),
                    counts[settings.topic(kind)],
                    1,
                    topic_configs=COMPACT,
                )
                for kind in sources
            ],
        )
        return {kind: counts[settings.topic(kind)] for kind in sources}
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    existing = set(await admin.list_topics())
    missing = [t for t in topics if t.name not in existing]
    if not missing:
        return
    with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
        await admin.create_topics(missing)


async def _partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    described = await admin.describe_topics(names)
    return {d["topic"]: len(d["partitions"]) for d in described}

"""Clients wired to a test's private topics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from producers import GenPulse
from producers.settings import GenPulseSettings

ClientFactory = Callable[..., GenPulse]


@pytest.fixture
def make_client(settings: GenPulseSettings) -> Iterator[ClientFactory]:
    """Build GenPulse clients on this test's topics; all are closed at the end."""
    clients: list[GenPulse] = []

    def make(**overrides: Any) -> GenPulse:
        options: dict[str, Any] = {
            "service": "test-service",
            "bootstrap_servers": settings.kafka_bootstrap,
            "topic_prefix": settings.topic_prefix,
            "follow_budget_state": False,
            "shutdown_timeout_s": 5.0,
            **overrides,
        }
        client = GenPulse(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=5.0)


def create_topic(bootstrap: str, topic: str, partitions: int, **config: str) -> None:
    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(topic, partitions, 1, topic_configs=config or None)]
            )
        finally:
            await admin.close()

    asyncio.run(create())

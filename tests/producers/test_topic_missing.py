"""The SDK never creates a topic: it buffers until the topic exists, then delivers it all."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient

from producers.settings import GenPulseSettings
from tests.producers.conftest import ClientFactory
from tests.producers.kafka_read import read_topic
from tests.services import create_topology


def topic_names(bootstrap: str) -> set[str]:
    async def names() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(names())


def test_events_wait_for_the_topic_and_arrive_once_it_exists(
    settings: GenPulseSettings, make_client: ClientFactory, unique: str
) -> None:
    prefix = f"late-{unique}"  # not the fixture's prefix: nothing made these topics
    client = make_client(topic_prefix=prefix, retry_max_backoff_s=0.5)
    for i in range(20):
        client.events.track("cache_hit", {"i": i}, session_id=f"s{i % 4}")
    assert not client.flush(timeout=3), "nothing can be delivered before the topic exists"
    stats = client.stats()
    assert stats.sent == 0 and stats.buffered == 20 and stats.dropped == 0
    assert f"topic {prefix}.events does not exist" in (stats.last_error or "")
    assert not {n for n in topic_names(settings.kafka_bootstrap) if n.startswith(prefix)}

    create_topology(settings.kafka_bootstrap, prefix)
    assert client.flush(timeout=30), client.stats()
    received = read_topic(settings.kafka_bootstrap, f"{prefix}.events", expect=20)
    assert sorted(int(r.value["data"]["i"]) for r in received) == list(range(20))  # type: ignore[index]

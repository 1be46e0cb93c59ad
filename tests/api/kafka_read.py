"""Read back what the API wrote, as the worker would (read_committed)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord


async def read_topic(
    bootstrap: str, topic: str, expect: int | None = None, idle_ms: int = 2000
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of `topic`: until `expect` arrived, or until idle for idle_ms."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        for _ in range(60):
            batch = await consumer.getmany(timeout_ms=idle_ms)
            for records in batch.values():
                found.extend(records)
            if expect is not None and len(found) >= expect:
                return found
            if not batch and (expect is None or found):
                return found
        return found
    finally:
        await consumer.stop()

"""Kafka transactions work on the single local broker (transaction log replication 1)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from producers.settings import GenPulseSettings


async def _read_all(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level=isolation,
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=3000)
            if not batch:
                return values
            for records in batch.values():
                values.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()


async def test_committed_transaction_is_visible_and_aborted_one_is_not(
    settings: GenPulseSettings, unique: str
) -> None:
    topic = settings.topic("events")
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, transactional_id=f"tx-{unique}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed-1", partition=0)
            await producer.send(topic, b"committed-2", partition=0)
        await producer.begin_transaction()
        await producer.send(topic, b"aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-3", partition=0)
    finally:
        await producer.stop()

    committed = await _read_all(settings.kafka_bootstrap, topic, "read_committed")
    assert committed == [b"committed-1", b"committed-2", b"committed-3"]
    uncommitted = await _read_all(settings.kafka_bootstrap, topic, "read_uncommitted")
    assert b"aborted" in uncommitted

"""Every EventType survives a trip through the real broker, byte for byte and field for field."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from producers.contract import decode_event, encode_event
from producers.events import EventType
from producers.settings import GenPulseSettings
from tests.unit.test_contract import make_event


async def test_every_event_type_round_trips_through_kafka(settings: GenPulseSettings) -> None:
    topic = settings.topic("events")
    sent = [make_event(kind, session_id=f"s-{i % 3}") for i, kind in enumerate(EventType)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in sent:
            await producer.send_and_wait(topic, encode_event(event), key=event.session_id.encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received = []
    try:
        while len(received) < len(sent):
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"only {len(received)} of {len(sent)} events came back"
            for records in batch.values():
                received.extend(decode_event(r.value) for r in records if r.value is not None)
    finally:
        await consumer.stop()
    # several partitions: order is kept per session only
    assert sorted(received, key=lambda e: e.event_id) == sorted(sent, key=lambda e: e.event_id)

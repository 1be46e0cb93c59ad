"""The jar-based broker: restarts on the same log dir keep data; a stopped broker is really gone."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from genpulse.devservices import start_kafka
from genpulse.devservices.ports import port_open


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)  # the broker auto-creates none
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume_one(bootstrap: str, topic: str) -> bytes | None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await consumer.getone()
        return record.value
    finally:
        await consumer.stop()


async def test_restart_on_same_dir_and_port_keeps_topics(tmp_path: Path) -> None:
    first = start_kafka(tmp_path / "k")
    try:
        await _produce(first.bootstrap, "durable", b"kept")
    finally:
        first.stop()
    assert not port_open(first.port), "the broker still listens after stop()"

    second = start_kafka(tmp_path / "k", port=first.port)
    try:
        assert await _consume_one(second.bootstrap, "durable") == b"kept"
    finally:
        second.stop()

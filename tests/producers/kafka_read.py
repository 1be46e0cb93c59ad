"""Read back what the SDK wrote: every record of a topic, waiting up to a deadline."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer


@dataclass(frozen=True)
class Received:
    key: bytes | None
    value: dict[str, object]
    partition: int
    offset: int


def read_topic(bootstrap: str, topic: str, expect: int, timeout_s: float = 60.0) -> list[Received]:
    """All records of `topic` once `expect` arrived (or the deadline passed), plus stragglers."""
    return asyncio.run(_read(bootstrap, topic, expect, timeout_s))


async def _read(bootstrap: str, topic: str, expect: int, timeout_s: float) -> list[Received]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    received: list[Received] = []
    deadline = time.monotonic() + timeout_s
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                received.extend(
                    Received(r.key, orjson.loads(r.value), tp.partition, r.offset)
                    for r in records
                    if r.value is not None
                )
            if len(received) >= expect:
                # keep reading briefly: duplicates would show up right behind
                quiet_until = quiet_until or time.monotonic() + 1.5
                if time.monotonic() >= quiet_until:
                    break
    finally:
        await consumer.stop()
    return received


def duplicates(received: list[Received]) -> dict[str, int]:
    counts = Counter(str(r.value["event_id"]) for r in received)
    return {event_id: n for event_id, n in counts.items() if n > 1}


def in_session_order(received: list[Received], field: str = "i") -> bool:
    """Within each session (same partition), data[field] increases with the offset."""
    last: dict[str, int] = {}
    for r in sorted(received, key=lambda r: (r.partition, r.offset)):
        session = str(r.value["session_id"])
        data = r.value["data"]
        assert isinstance(data, dict)
        value = int(data[field])
        if value <= last.get(session, -1):
            return False
        last[session] = value
    return True

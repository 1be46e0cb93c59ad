"""This replica's view of the compacted `<prefix>.control` topic: the current alert rules.

The topic is the source of truth (the API writes it, the worker obeys it), so the API reads
it back instead of keeping a copy elsewhere. A background consumer without a group reads it
from the beginning (read_committed) and keeps the latest value per key; `sync()` waits until
it has caught up with the topic's end, which gives GET read-your-writes after a PUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.kafka_writer import KafkaUnavailable

log = logging.getLogger(__name__)


class ControlView:
    def __init__(self, bootstrap: str, topic: str, timeout_s: float) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout_s = timeout_s
        self._records: dict[str, dict[str, Any]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._lock = asyncio.Lock()

    def rules(self) -> list[dict[str, Any]]:
        found = [v for k, v in self._records.items() if k.startswith("rule:")]
        return sorted(found, key=lambda rule: str(rule.get("id", "")))

    def rule_ids(self) -> set[str]:
        return {key.removeprefix("rule:") for key in self._records if key.startswith("rule:")}

    async def stop(self) -> None:
        await self._drop_consumer()

    async def sync(self) -> None:
        """Read the topic up to its current end, or raise KafkaUnavailable."""
        try:
            async with self._lock:
                await asyncio.wait_for(self._catch_up(), self._timeout_s)
        except KafkaUnavailable:
            raise
        except Exception as exc:
            await self._drop_consumer()
            raise KafkaUnavailable(f"cannot read {self._topic}: {type(exc).__name__}") from None

    async def _catch_up(self) -> None:
        consumer = await self._ready_consumer()
        if not self._partitions:
            return
        ends = await consumer.end_offsets(self._partitions)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(*self._partitions, timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self._apply(record.key, record.value)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        name = key.decode("utf-8", "replace")
        if value is None:
            self._records.pop(name, None)
            return
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("skipping an undecodable control record for key %s", name)
            return
        if isinstance(parsed, dict):
            self._records[name] = parsed

    async def _ready_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                isolation_level="read_committed",
                request_timeout_ms=max(1000, int(self._timeout_s * 1000)),
            )
            await consumer.start()
            self._consumer = consumer
        if not self._partitions:
            await self._assign(self._consumer)
        return self._consumer

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        # consumer.topics() fetches metadata without keeping it, so read the fetched copy
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(self._topic) or set()
        if not partitions:
            return  # nothing written yet: an empty view is the truth
        self._partitions = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        self._records.clear()

    async def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._partitions = []
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), self._timeout_s)

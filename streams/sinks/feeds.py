"""Kafka feeds of the sinks process: each reads one topic and hands every record on at once.

`handle(record)` only queues (sinks' `offer()` never waits), so a feed keeps pace with
its topic whatever the endpoints do. Three ways to read:

- group with auto-commit (`<prefix>.events`, `<prefix>.metrics`): best effort; a crash loses
  what sat in the outboxes and re-reads the last seconds of records;
- group with commit after delivery (`<prefix>.alerts`): an `OffsetTracker` commits a
  partition only up to its first record not yet settled (sent, failed or dropped);
- no group, every partition from the beginning (`<prefix>.budget-state`, compacted): the
  current state of every scope at each start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from streams.sinks.health import SinkStats, now_ms

log = logging.getLogger("genpulse.sinks")

COMMIT_EVERY_S = 1.0
STOP_TIMEOUT_S = 10.0


class OffsetTracker:
    """Which offsets may be committed: per partition, up to the first unsettled record.

    `add(tp, offset, waiting)` registers a record that `waiting` deliveries must settle;
    `done(tp, offset)` settles one of them. Records must be added in offset order.
    """

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, dict[int, int]] = {}
        self._next: dict[TopicPartition, int] = {}

    def add(self, tp: TopicPartition, offset: int, waiting: int) -> None:
        self._next[tp] = offset + 1
        if waiting > 0:
            self._pending.setdefault(tp, {})[offset] = waiting

    def done(self, tp: TopicPartition, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is None or offset not in pending:
            return  # partition revoked since, or settled twice
        pending[offset] -= 1
        if pending[offset] <= 0:
            del pending[offset]

    def committable(self) -> dict[TopicPartition, int]:
        """Offset to commit per partition (the next record to read after a restart)."""
        out = {}
        for tp, next_offset in self._next.items():
            pending = self._pending.get(tp)
            out[tp] = min(pending) if pending else next_offset
        return out

    def forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)


class KafkaFeed:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        handle: Callable[[ConsumerRecord[bytes, bytes]], None],
        stats: SinkStats,
        *,
        group: str | None,
        start: str = "latest",
        tracker: OffsetTracker | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._handle = handle
        self.stats = stats
        stats.ready_ms = 0  # the health hash shows when the feed got its partitions
        self._group = group
        self._start = start
        self._tracker = tracker
        self.ready = asyncio.Event()  # set once partitions are assigned and positioned
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            enable_auto_commit=self._group is not None and self._tracker is None,
            auto_offset_reset="earliest" if self._group is None else self._start,
            max_partition_fetch_bytes=1024 * 1024,
            metadata_max_age_ms=30_000,  # notice a topic created after we started
        )
        await self._start_with_retries(consumer)
        self._consumer = consumer
        try:
            await self._position(consumer)
            last_commit = asyncio.get_running_loop().time()
            while True:
                try:
                    batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                except KafkaError as exc:  # the client reconnects by itself; wait and go on
                    self.stats.error(f"{type(exc).__name__}: {exc}")
                    log.warning("sinks feed %s: %s", self._topic, exc)
                    await asyncio.sleep(1)
                    continue
                for records in batch.values():
                    for record in records:
                        self._handle_safely(record)
                await self._mark_ready(consumer)
                if self._tracker is not None:
                    now = asyncio.get_running_loop().time()
                    if now - last_commit >= COMMIT_EVERY_S:
                        await self.commit()
                        last_commit = now
        finally:
            await self.commit()
            await self._close(consumer)

    async def _close(self, consumer: AIOKafkaConsumer) -> None:
        """Leave the group and close, for at most STOP_TIMEOUT_S. Not `wait_for`: on a
        timeout it waits for the cancelled close to end, and a close that swallows the
        cancellation would hold the stop for ever; this one is left behind instead."""
        closing = asyncio.ensure_future(consumer.stop())
        done, _ = await asyncio.wait({closing}, timeout=STOP_TIMEOUT_S)
        if not done:
            closing.cancel()
            log.warning("sinks feed %s: consumer not closed in %s s", self._topic, STOP_TIMEOUT_S)
        elif closing.exception() is not None:
            log.warning(
                "sinks feed %s: consumer not closed cleanly: %r", self._topic, closing.exception()
            )

    async def commit(self) -> None:
        """Commit what the tracker allows (alerts feed only); failures wait for the next try."""
        if self._tracker is None or self._consumer is None:
            return
        offsets = {
            tp: offset
            for tp, offset in self._tracker.committable().items()
            if tp in self._consumer.assignment()
        }
        if not offsets:
            return
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), STOP_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            log.warning("alerts offsets not committed yet: %r", exc)

    async def _start_with_retries(self, consumer: AIOKafkaConsumer) -> None:
        delay = 0.5
        while True:
            try:
                await consumer.start()
                return
            except KafkaError as exc:
                log.warning("sinks feed %s: Kafka not reachable (%s); retrying", self._topic, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        if self._group is not None:
            consumer.subscribe([self._topic], listener=_Rebalance(self))
            return  # `ready` is set in the read loop once the group assigned partitions
        partitions = await self._wait_for_partitions(consumer)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._set_ready()

    async def _mark_ready(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        if self.ready.is_set() or not assigned:
            return
        for tp in assigned:
            await consumer.position(tp)  # resolves "latest" now, so later records are read
        self._set_ready()

    def _set_ready(self) -> None:
        self.stats.ready_ms = now_ms()
        self.ready.set()

    async def _wait_for_partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while True:
            numbers = consumer.partitions_for_topic(self._topic)
            if numbers:
                return [TopicPartition(self._topic, n) for n in sorted(numbers)]
            with contextlib.suppress(KafkaError):
                # no public call refreshes the client's own metadata for one topic
                await consumer._client.force_metadata_update()
            await asyncio.sleep(0.5)

    def _handle_safely(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            self._handle(record)
        except Exception as exc:  # one bad record must not stop the feed
            self.stats.reject("handler_error")
            self.stats.error(f"{type(exc).__name__}: {exc}")
            log.exception("sinks feed %s: record at offset %s", self._topic, record.offset)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, feed: KafkaFeed) -> None:
        self._feed = feed

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._feed.commit()
        if self._feed._tracker is not None:
            self._feed._tracker.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None

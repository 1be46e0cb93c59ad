"""All-or-nothing Kafka writes for the API: each request's records commit in one transaction.

Why a transaction: a /v1/collect batch goes to several partitions (keyed by session), and a
budget or rule change may be several control records. Either all of a request's records
become visible to `read_committed` consumers or none do, so a 503 never leaves half a batch.

Concurrent requests share a transaction (group commit): while one commits, the next ones
queue up and commit together, so one producer keeps up with many requests. When anything
fails (broker down, timeout), the producer is thrown away and made anew on the next write;
a new producer with the same transactional id fences the old one and aborts its leftovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)

MAX_RECORDS_PER_TRANSACTION = 5000
T = TypeVar("T")


class KafkaUnavailable(RuntimeError):
    """Kafka could not take the records; none of them were committed."""


class TopicMissing(KafkaUnavailable):
    """A topic the records go to does not exist. The API never creates topics (a producer's
    metadata request for a missing topic would, on a broker that auto-creates): the worker
    or `genpulse topics create` makes them, as the topology says (streams/topology.py)."""


@dataclass(frozen=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes | None  # None is a tombstone (compacted topics)


@dataclass
class _Request:
    records: Sequence[OutRecord]
    done: asyncio.Future[None]


async def bounded(coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
    """Await `coro` for at most timeout_s. Unlike asyncio.wait_for, never wait for the
    cancelled work to wind down: aiokafka shields transaction ends, which hang while the
    broker is gone."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if task not in done:
        task.cancel()
        task.add_done_callback(_consume_outcome)
        raise TimeoutError
    return task.result()


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class TransactionalWriter:
    def __init__(self, bootstrap: str, transactional_id: str, timeout_s: float) -> None:
        self._bootstrap = bootstrap
        self._transactional_id = transactional_id
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._known_topics: set[str] = set()
        self._starting = asyncio.Lock()  # one producer per transactional id, never two

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="kafka-writer")
        with contextlib.suppress(KafkaUnavailable):
            await self.check()  # connect early when Kafka is there; later otherwise

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for request in self._queue:
            if not request.done.done():
                request.done.set_exception(KafkaUnavailable("the API is shutting down"))
        self._queue.clear()
        self._abandon()
        if self._closing:
            await asyncio.wait(self._closing, timeout=self._timeout_s)

    async def write(self, records: Sequence[OutRecord]) -> None:
        """Commit `records` atomically, or raise KafkaUnavailable having committed none."""
        if not records:
            return
        await self._require_topics({record.topic for record in records})
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(records, done))
        self._wake.set()
        await asyncio.shield(done)

    async def check(self) -> None:
        """Raise KafkaUnavailable unless the cluster answers a metadata request."""
        try:
            producer = await bounded(self._ready_producer(), self._timeout_s)
            await bounded(producer.client.fetch_all_metadata(), self._timeout_s)
        except Exception as exc:
            raise KafkaUnavailable(_describe(exc)) from None

    async def _require_topics(self, topics: set[str]) -> None:
        """Raise TopicMissing unless every topic exists (asks with an all-topics metadata
        request, which never creates one; known topics are not asked about again)."""
        unknown = topics - self._known_topics
        if not unknown:
            return
        try:
            producer = await bounded(self._ready_producer(), self._timeout_s)
            cluster = await bounded(producer.client.fetch_all_metadata(), self._timeout_s)
        except Exception as exc:
            raise KafkaUnavailable(_describe(exc)) from None
        self._known_topics |= unknown & set(cluster.topics())
        missing = sorted(unknown - self._known_topics)
        if missing:
            raise TopicMissing(
                f"topic {missing[0]} does not exist; the worker creates it at start, "
                "or run `genpulse topics create`"
            )

    async def _ready_producer(self) -> AIOKafkaProducer:
        async with self._starting:
            return await self._start_producer()

    async def _start_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                transactional_id=self._transactional_id,
                transaction_timeout_ms=max(10_000, int(self._timeout_s * 4000)),
                request_timeout_ms=max(1000, int(self._timeout_s * 1000)),
                acks="all",
                linger_ms=2,
            )
            try:
                await producer.start()
            except BaseException:
                self._close_later(producer)
                raise
            self._producer = producer
        return self._producer

    def _abandon(self) -> None:
        """Forget the producer; its stop runs in the background (it may hang while Kafka is
        down), and the next producer with the same transactional id fences it anyway."""
        producer, self._producer = self._producer, None
        if producer is not None:
            self._close_later(producer)

    def _close_later(self, producer: AIOKafkaProducer) -> None:
        async def close() -> None:
            with contextlib.suppress(Exception):
                await bounded(producer.stop(), self._timeout_s)

        task = asyncio.create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                group = self._take_group()
                try:
                    await bounded(self._commit(group), self._timeout_s)
                except Exception as exc:
                    log.warning("Kafka write failed, nothing committed: %s", _describe(exc))
                    self._abandon()
                    failure = KafkaUnavailable(_describe(exc))
                    for request in group:
                        if not request.done.done():
                            request.done.set_exception(failure)
                else:
                    for request in group:
                        if not request.done.done():
                            request.done.set_result(None)

    def _take_group(self) -> list[_Request]:
        group: list[_Request] = []
        count = 0
        while self._queue and (
            not group or count + len(self._queue[0].records) <= MAX_RECORDS_PER_TRANSACTION
        ):
            request = self._queue.pop(0)
            group.append(request)
            count += len(request.records)
        return group

    async def _commit(self, group: list[_Request]) -> None:
        # No abort on failure: the producer is abandoned and its successor's
        # initialisation aborts whatever this transaction left open.
        producer = await self._ready_producer()
        await producer.begin_transaction()
        sent = [
            await producer.send(record.topic, record.value, key=record.key)
            for request in group
            for record in request.records
        ]
        for future in sent:  # an abandoned transaction's futures fail later, unobserved
            future.add_done_callback(_consume_outcome)
        await asyncio.gather(*sent)
        await producer.commit_transaction()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "Kafka did not answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

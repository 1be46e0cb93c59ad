"""The background sender: one daemon thread, its own asyncio loop, one idempotent producer.

Each *round* takes the oldest buffered events (plus any metric batch or control record
that is due), encodes them, hands them to aiokafka in per-partition batches and waits for
every batch's answer before the next round, so records of one session stay in order.

Why a resend cannot duplicate: the producer is idempotent (acks=all) and a batch handed
to it never expires (see _never_expire_batches): aiokafka retries it with its original
sequence number until the broker answers, and the broker drops the repeats. An error
therefore only reaches this module for records the broker did not write: not handed over
in time (no room, no metadata) or rejected. Those go out again, in their original order,
through a fresh producer. Errors that no resend can fix (record too large, not
authorised) are counted as failed. Before encoding, each event's `data` gets the worker's
own check (producers/data_check.py): what the worker would dead-letter is counted in
stats().invalid by reason and never sent. Anything else is resent too and counted in
`resent_uncertain`, the one case where a duplicate is conceivable.

While Kafka is down, rounds wait and the buffer keeps taking events up to its limits;
reconnecting uses exponential backoff with jitter. The same loop also follows the
budget-state topic (producers/budget_follower.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiokafka.errors as kafka_errors
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from producers.budget import BudgetView
from producers.budget_follower import follow_budget_state
from producers.buffer import EventBuffer, Record, estimated_bytes
from producers.contract import encode_fields
from producers.data_check import FAST_CHECKS, believable, data_problem
from producers.deferred import DeferredReports
from producers.local_metrics import MetricAggregator, encode_window
from producers.problems import InputProblems
from producers.sdk_settings import SdkSettings

log = logging.getLogger("genpulse.sdk")

MAX_BATCH_BYTES = 1_000_000
REQUEST_TIMEOUT_MS = 30_000
MAX_ROUND_EVENTS = 50_000
_PARTITION_CACHE_LIMIT = 100_000

EVENT, METRICS, CONTROL = 0, 1, 2

NOT_WRITTEN: tuple[type[BaseException], ...] = (
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.LeaderNotAvailableError,
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.ProducerFenced,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.ProducerClosed,
)
"""Errors meaning the broker did not write the batch: safe to send again."""

UNSENDABLE: tuple[type[BaseException], ...] = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTopicError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.InvalidTimestampError,
    kafka_errors.UnsupportedForMessageFormatError,
)
"""Errors no resend can fix: the records are counted as failed."""


class TopicMissing(Exception):
    """A topic to send to does not exist yet; its records stay buffered and are sent again.

    The SDK never creates topics: a producer's metadata request naming a missing topic
    would, on a broker with auto.create.topics.enable, create it with the broker's defaults
    (one partition, not compacted). So a topic is named to the producer only once an
    all-topics metadata request, which creates nothing, shows it exists."""


@dataclass(slots=True)
class OutRecord:
    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int | None
    kind: int
    held_bytes: int  # the buffer's estimate, released when the record is settled


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs the loop's blocking helpers (getaddrinfo) inline on the sender thread.

    The default thread pool refuses work once the interpreter starts shutting down, which
    would stop the exit-time flush from (re)connecting.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class Sender:
    """Owns the delivery of one client's events, metric batches and control records."""

    def __init__(
        self,
        settings: SdkSettings,
        service: str,
        buffer: EventBuffer,
        metrics: MetricAggregator,
        budget: BudgetView,
        problems: InputProblems,
        deferred: DeferredReports | None = None,
    ) -> None:
        self._settings = settings
        self._deferred = deferred  # run before each round takes events
        self._service = service
        self._buffer = buffer
        self._metrics = metrics
        self._budget = budget
        self._problems = problems
        self._events_topic = settings.topic("events")
        self._metrics_topic = settings.topic("metrics")
        self._control_topic = settings.topic("control")
        self._id_prefix = secrets.token_hex(8)
        self._id_counter = 0
        self._pid = os.getpid()
        self._control: deque[tuple[bytes, bytes]] = deque()
        self._retry: list[OutRecord] = []
        self._producer: AIOKafkaProducer | None = None
        self._partition_cache: dict[tuple[str, int], dict[bytes, int]] = {}
        self._known_topics: set[str] = set()
        self._cond = threading.Condition()
        self._requested_gen = 0
        self._done_gen = 0
        self._resolved_upto = 0
        self._flush_upto = 0  # flush() callers wait for every event accepted before this
        self._closing = False
        self._close_deadline = float("inf")
        self._last_metrics_at = time.monotonic()
        self._backoff_attempt = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self.wake_pending = False
        # counters read by stats()
        self.sent = 0
        self.metric_batches_sent = 0
        self.control_sent = 0
        self.failed = 0
        self.retries = 0
        self.errors = 0
        self.resent = 0
        self.resent_uncertain = 0
        self.connected = False
        self.last_error: str | None = None
        self._thread = threading.Thread(
            target=self._thread_main, name="genpulse-sender", daemon=True
        )

    # -- caller side (any thread) -------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Ask for a round now (cheap; safe from any thread)."""
        self.wake_pending = True
        loop, event = self._loop, self._wake_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(event.set)

    def send_control(self, key: bytes, value: bytes) -> None:
        self._control.append((key, value))
        self.request_flush()

    def request_flush(self) -> tuple[int, int]:
        """Ask for a round that includes a metric batch; returns what flush() waits for."""
        with self._cond:
            self._requested_gen += 1
            ticket = (self._buffer.accepted, self._requested_gen)
            self._flush_upto = max(self._flush_upto, ticket[0])
        self.wake()
        return ticket

    def wait(self, ticket: tuple[int, int], timeout: float | None) -> bool:
        """Wait until every event accepted before `ticket` is settled and its batch sent."""
        accepted, gen = ticket
        if not self._thread.is_alive() or self._pid != os.getpid():
            return False
        with self._cond:
            return self._cond.wait_for(
                lambda: self._resolved_upto >= accepted and self._done_gen >= gen, timeout
            )

    def flush(self, timeout: float | None) -> bool:
        return self.wait(self.request_flush(), timeout)

    def close(self, timeout: float, when: str = "close") -> bool:
        """Deliver what is buffered (up to `timeout` s), then stop; True when nothing is left.

        Whatever is left is named in one warning (`when`: close or interpreter exit).
        """
        if self._pid != os.getpid() or not self._thread.is_alive() or self._closing:
            return self.pending() == 0  # a second close (e.g. at exit) does not wait again
        self._close_deadline = time.monotonic() + timeout
        self._closing = True
        self.request_flush()
        self._thread.join(timeout)
        left = self.pending()
        if left:
            log.warning(
                "genpulse: %d events not delivered at %s: Kafka at %s unreachable for %.1f s (%s)",
                left,
                when,
                self._settings.kafka_bootstrap,
                timeout,
                self.last_error or "no answer",
            )
        return left == 0 and not self._thread.is_alive()

    def pending(self) -> int:
        deferred = len(self._deferred) if self._deferred is not None else 0
        return self._buffer.pending()[0] + len(self._control) + deferred

    # -- sender thread ------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(InlineExecutor())
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("genpulse: the sender stopped unexpectedly")
        finally:
            with contextlib.suppress(Exception):
                loop.close()

    async def _main(self) -> None:
        self._wake_event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        follower = None
        if self._settings.follow_budget_state:
            follower = asyncio.create_task(
                follow_budget_state(self._settings, self._service, self._budget, self._note_error)
            )
        try:
            while not (self._closing and self._finished()):
                await self._sleep_until_due()
                try:
                    await self._deliver()
                except Exception as exc:  # never let the thread die
                    self._note_error(exc)
                    await self._backoff()
                if self._closing and time.monotonic() >= self._close_deadline:
                    break
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(BaseException):
                    await follower
            await self._drop_producer()

    def _finished(self) -> bool:
        return (
            not self._retry
            and not self._control
            and not self._deferred
            and self._buffer.pending()[0] == 0
            and self._done_gen >= self._requested_gen
        )

    async def _sleep_until_due(self) -> None:
        assert self._wake_event is not None
        due = self._last_metrics_at + self._settings.flush_interval_s - time.monotonic()
        if (
            due <= 0
            or self._retry
            or self._closing
            or self._buffer.waiting() >= self._settings.flush_at
            or self._requested_gen > self._done_gen
        ):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake_event.wait(), due)
        self._wake_event.clear()

    async def _deliver(self) -> None:
        """Rounds until the buffer is below flush_at and every flush request is served."""
        while True:
            self.wake_pending = False
            gen = self._requested_gen
            if self._deferred is not None:
                self._deferred.run()
            producer = await self._ready_producer()
            if producer is None:
                return
            records, self._retry = self._retry, []
            if gen > self._done_gen or self._closing or self._metrics_due():
                records.extend(self._take_metrics())
            while self._control:
                key, value = self._control.popleft()
                records.append(OutRecord(self._control_topic, key, value, None, CONTROL, 0))
            half_events = max(1, self._buffer.max_events // 2)
            taken, removed = self._buffer.take(
                min(MAX_ROUND_EVENTS, max(0, half_events - len(records))),
                self._buffer.max_bytes // 2,
            )
            records.extend(self._encode(taken))
            if records:
                failed = await self._send(producer, records)
                if failed:
                    self._retry = failed
                    self.retries += 1
                    await self._backoff()
                    continue
            self._backoff_attempt = 0
            with self._cond:
                self._resolved_upto = max(self._resolved_upto, removed)
                self._done_gen = max(self._done_gen, gen)
                self._cond.notify_all()
            if (
                self._buffer.waiting() < self._settings.flush_at
                and self._requested_gen == self._done_gen
                and self._resolved_upto >= self._flush_upto
                and not (self._closing and self._buffer.waiting())
            ):
                return

    def _metrics_due(self) -> bool:
        return time.monotonic() - self._last_metrics_at >= self._settings.flush_interval_s

    def _take_metrics(self) -> list[OutRecord]:
        self._last_metrics_at = time.monotonic()
        window = self._metrics.take_window()
        if window is None:
            return []
        key = self._service.encode()
        return [
            OutRecord(self._metrics_topic, key, value, window.end_ms, METRICS, 0)
            for value in encode_window(self._service, window)
        ]

    def _encode(self, taken: list[Record]) -> list[OutRecord]:
        out: list[OutRecord] = []
        topic, service, prefix = self._events_topic, self._service, self._id_prefix
        max_bytes = self._settings.max_event_bytes
        environment, client_tags = self._settings.environment, self._settings.tags
        for record in taken:
            event_type, ts, session_id, user_id, items = record[:5]
            tags = record[5] if len(record) == 6 else client_tags
            self._id_counter += 1
            problem = _identity_problem(session_id, user_id)
            value = b""
            data = dict(items) if items else {}
            if problem is None and not FAST_CHECKS.get(event_type, believable)(data):
                problem = data_problem(event_type, data)  # None: a lax value the worker takes
            if problem is None:
                try:
                    encoded = encode_fields(
                        event_type,
                        f"{prefix}{self._id_counter:x}",
                        int(ts * 1000),
                        session_id,
                        user_id,
                        service,
                        data,
                        environment,
                        tags,
                    )
                except TypeError as exc:
                    problem = ("unserialisable_data", f"event data is not JSON-serialisable: {exc}")
                else:
                    # orjson's bytes keep a 4 KiB allocation each; held records get a tight copy
                    value = bytes(memoryview(encoded))
                    if len(value) > max_bytes:
                        problem = (
                            "event_too_large",
                            f"an event encodes to {len(value)} bytes; the limit is {max_bytes}",
                        )
            size = estimated_bytes(record)
            if problem is not None:
                self._problems.report(*problem)
                self._buffer.release(1, size)
                continue
            out.append(OutRecord(topic, session_id.encode(), value, int(ts * 1000), EVENT, size))
        return out

    async def _send(self, producer: AIOKafkaProducer, records: list[OutRecord]) -> list[OutRecord]:
        """One round; returns the records to send again, in their original order."""
        order = {id(record): i for i, record in enumerate(records)}
        try:
            groups = await self._group_by_partition(producer, records)
        except Exception as exc:
            self._note_error(exc)
            return records
        handed: list[tuple[asyncio.Future[Any], list[OutRecord]]] = []
        again: list[OutRecord] = []
        for (topic, partition), group in groups.items():
            stuck = False
            for builder, batch in _batches(producer, group):
                if stuck:
                    again.extend(batch)
                    continue
                try:
                    future = await producer.send_batch(builder, topic, partition=partition)
                except Exception as exc:  # not handed over: nothing was written
                    self._note_error(exc)
                    stuck = True
                    again.extend(batch)
                else:
                    handed.append((future, batch))
        results = await asyncio.gather(*(f for f, _ in handed), return_exceptions=True)
        renew = False
        for (_, batch), result in zip(handed, results, strict=True):
            if not isinstance(result, BaseException):
                self._settle(batch, delivered=True)
                continue
            self._note_error(result)
            if isinstance(result, UNSENDABLE):
                self._settle(batch, delivered=False)
                continue
            renew = True
            again.extend(batch)
            self.resent += len(batch)
            if not isinstance(result, NOT_WRITTEN):
                self.resent_uncertain += len(batch)
        if renew:  # sequence numbers may have a gap now: a fresh producer starts clean
            await self._drop_producer()
        again.sort(key=lambda record: order[id(record)])
        return again

    async def _group_by_partition(
        self, producer: AIOKafkaProducer, records: list[OutRecord]
    ) -> dict[tuple[str, int], list[OutRecord]]:
        partitions: dict[str, list[int]] = {}
        topics = {record.topic for record in records}
        await self._require_topics(producer, topics)
        for topic in topics:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        groups: dict[tuple[str, int], list[OutRecord]] = {}
        for record in records:
            topic_partitions = partitions[record.topic]
            partition = self._partition(record.topic, record.key, topic_partitions)
            groups.setdefault((record.topic, partition), []).append(record)
        return groups

    async def _require_topics(self, producer: AIOKafkaProducer, topics: set[str]) -> None:
        unknown = topics - self._known_topics
        if not unknown:
            return
        cluster = await asyncio.wait_for(
            producer.client.fetch_all_metadata(), REQUEST_TIMEOUT_MS / 1000
        )
        self._known_topics |= unknown & set(cluster.topics())
        missing = sorted(unknown - self._known_topics)
        if missing:
            raise TopicMissing(
                f"topic {missing[0]} does not exist yet; events wait in the buffer until the "
                "worker or `genpulse topics create` makes it"
            )

    def _partition(self, topic: str, key: bytes, partitions: list[int]) -> int:
        """Kafka's default (murmur2) choice, cached per key: sessions send many events."""
        if len(partitions) == 1:
            return partitions[0]
        cache = self._partition_cache.setdefault((topic, len(partitions)), {})
        partition = cache.get(key)
        if partition is None:
            if len(cache) >= _PARTITION_CACHE_LIMIT:
                cache.clear()
            partition = cache[key] = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
        return partition

    def _settle(self, records: list[OutRecord], *, delivered: bool) -> None:
        events = 0
        size = 0
        for record in records:
            if record.kind == EVENT:
                events += 1
                size += record.held_bytes
                if delivered:
                    self.sent += 1
                else:
                    self.failed += 1
            elif delivered and record.kind == METRICS:
                self.metric_batches_sent += 1
            elif delivered:
                self.control_sent += 1
            else:
                self.failed += 1
        if events:
            self._buffer.release(events, size)

    async def _ready_producer(self) -> AIOKafkaProducer | None:
        while self._producer is None:
            if self._closing and time.monotonic() >= self._close_deadline:
                return None
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.kafka_bootstrap,
                client_id=f"genpulse-{self._service}",
                acks="all",
                enable_idempotence=True,
                compression_type=None
                if self._settings.compression == "none"
                else self._settings.compression,
                max_batch_size=MAX_BATCH_BYTES,
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                retry_backoff_ms=250,
            )
            try:
                await asyncio.wait_for(producer.start(), REQUEST_TIMEOUT_MS / 1000)
            except Exception as exc:
                self._note_error(exc)
                self.retries += 1
                await _stop_quietly(producer, 2.0)
                await self._backoff()
                continue
            _never_expire_batches(producer)
            self._producer = producer
            self.connected = True
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        if producer is not None:
            await _stop_quietly(producer, 5.0)

    async def _backoff(self) -> None:
        """Sleep a jittered, exponentially growing delay (never past the close deadline)."""
        cap = min(
            self._settings.retry_max_backoff_s,
            self._settings.retry_initial_backoff_s * 2**self._backoff_attempt,
        )
        self._backoff_attempt = min(self._backoff_attempt + 1, 30)
        delay = random.uniform(cap / 2, cap)
        if self._closing:
            delay = min(delay, max(0.0, self._close_deadline - time.monotonic()))
        await asyncio.sleep(delay)

    def _note_error(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.errors == 1 or self.errors % 1000 == 0:
            log.warning("genpulse: Kafka delivery problem, will retry (%s)", self.last_error)


def _never_expire_batches(producer: AIOKafkaProducer) -> None:
    """Make batches wait for a partition leader for as long as it takes.

    aiokafka fails a batch whose partition has had no leader for request_timeout_ms, even
    a batch it already sent once (the broker may have written it while answering "not
    leader" during a shutdown). Resending such a batch through a new producer duplicates
    it; the tests saw exactly that. A batch that waits instead is retried with its
    original sequence number and the broker de-duplicates it.
    """
    accumulator = getattr(producer, "_message_accumulator", None)
    if accumulator is None or not hasattr(accumulator, "_batch_ttl"):
        log.warning("genpulse: this aiokafka has no batch ttl to lift; outages may duplicate")
        return
    accumulator._batch_ttl = float("inf")


def _identity_problem(session_id: Any, user_id: Any) -> tuple[str, str] | None:
    if type(session_id) is not str or not 0 < len(session_id) <= 128:
        return "invalid_session_id", f"session_id {session_id!r:.60} is not a 1..128 char string"
    if user_id is not None and (type(user_id) is not str or not 0 < len(user_id) <= 128):
        return "invalid_user_id", f"user_id {user_id!r:.60} is not a 1..128 char string or None"
    return None


def _batches(
    producer: AIOKafkaProducer, records: list[OutRecord]
) -> Iterator[tuple[Any, list[OutRecord]]]:
    """Split one partition's records into producer batches of at most MAX_BATCH_BYTES."""
    builder = producer.create_batch()
    batch: list[OutRecord] = []
    for record in records:
        appended = builder.append(timestamp=record.timestamp_ms, key=record.key, value=record.value)
        if appended is None:
            yield builder, batch
            builder = producer.create_batch()
            batch = []
            builder.append(timestamp=record.timestamp_ms, key=record.key, value=record.value)
        batch.append(record)
    if batch:
        yield builder, batch


async def _stop_quietly(client: AIOKafkaProducer, timeout: float) -> None:
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(client.stop(), timeout)

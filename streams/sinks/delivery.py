"""One sink's bounded outbox: `offer()` never waits; a task delivers batches with retries.

Why: a slow or dead endpoint must cost the rest of genpulse nothing. The outbox holds at
most `capacity` items; when full, the oldest item is dropped and counted. Delivery retries
a failed batch with exponential backoff and jitter, up to `max_attempts`, then counts the
batch as failed and moves on. Every item ends as sent, failed or dropped in `SinkStats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from streams.sinks.health import SinkStats, now_ms

log = logging.getLogger("genpulse.sinks")

T = TypeVar("T")


class DeliveryError(Exception):
    """A batch did not arrive. `retryable` False means trying again cannot help (e.g. 400)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, rand: float) -> float:
        """Wait after failed try number `attempt` (1-based): half of the doubled step is
        fixed, half is random (`rand` in [0, 1)), so retries spread out but never hit 0."""
        step = min(self.max_s, self.base_s * 2.0 ** (attempt - 1))
        return step / 2 + step / 2 * rand


Deliver = Callable[[list[T]], Awaitable[int]]
"""Sends one batch; returns how many of its items were lost on the way (usually 0) or
raises `DeliveryError` when none arrived."""


class Outbox(Generic[T]):
    """Bounded FIFO of items grouped by `key` (a batch never mixes keys), drained by `run()`."""

    def __init__(
        self,
        stats: SinkStats,
        deliver: Deliver[T],
        *,
        capacity: int,
        retry: RetryPolicy,
        batch_size: int = 1,
        linger_s: float = 0.0,
        key: Callable[[T], Hashable] = lambda _item: None,
        on_settled: Callable[[T, Outcome], None] | None = None,
    ) -> None:
        self.stats = stats
        self._deliver = deliver
        self._capacity = capacity
        self._retry = retry
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._key = key
        self._on_settled = on_settled
        self._groups: OrderedDict[Hashable, deque[T]] = OrderedDict()
        self._size = 0
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def offer(self, item: T) -> None:
        """Queue one item without waiting; a full outbox drops its oldest item."""
        if self._size >= self._capacity:
            self._settle([self._pop_oldest()], Outcome.DROPPED)
        self._groups.setdefault(self._key(item), deque()).append(item)
        self._size += 1
        self._idle.clear()
        self._wake.set()
        self._count_queued()

    def __len__(self) -> int:
        return self._size + self._in_flight

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            if self._size < self._batch_size and self._linger_s > 0:
                await asyncio.sleep(self._linger_s)  # let a batch fill up
            batch = self._take_batch()
            if not batch:
                self._wake.clear()
                if not self._in_flight:
                    self._idle.set()
                continue
            self._in_flight = len(batch)
            try:
                await self._deliver_with_retries(batch)
            finally:
                self._in_flight = 0
                self._count_queued()
                if not self._size:
                    self._idle.set()

    async def drained(self, timeout_s: float) -> bool:
        """Wait until everything offered so far is settled; False if time ran out."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        return self._idle.is_set()

    async def _deliver_with_retries(self, batch: list[T]) -> None:
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                lost = await self._deliver(batch)
            except DeliveryError as exc:
                self.stats.error(str(exc))
                if not exc.retryable or attempt == self._retry.max_attempts:
                    self._settle(batch, Outcome.FAILED)
                    return
            except Exception as exc:  # a bug in one sink must not stop the others
                log.exception("sink %s: delivery raised", self.stats.name)
                self.stats.error(f"{type(exc).__name__}: {exc}")
                self._settle(batch, Outcome.FAILED)
                return
            else:
                self._settle(batch[: len(batch) - lost], Outcome.SENT)
                self._settle(batch[len(batch) - lost :], Outcome.FAILED)
                return
            self.stats.retries += 1
            await asyncio.sleep(self._retry.delay(attempt, random.random()))

    def _take_batch(self) -> list[T]:
        if not self._groups:
            return []
        key, items = next(iter(self._groups.items()))
        batch = [items.popleft() for _ in range(min(self._batch_size, len(items)))]
        if not items:
            del self._groups[key]
        self._size -= len(batch)
        return batch

    def _pop_oldest(self) -> T:
        key, items = next(iter(self._groups.items()))
        item = items.popleft()
        if not items:
            del self._groups[key]
        self._size -= 1
        return item

    def _settle(self, items: list[T], outcome: Outcome) -> None:
        if not items:
            return
        if outcome is Outcome.SENT:
            self.stats.sent += len(items)
            self.stats.last_sent_ms = now_ms()
        elif outcome is Outcome.FAILED:
            self.stats.failed += len(items)
        else:
            self.stats.dropped += len(items)
        if self._on_settled is not None:
            for item in items:
                self._on_settled(item, outcome)

    def _count_queued(self) -> None:
        self.stats.queued = self._size + self._in_flight

"""Datadog events API v1: one event per completed generation, with its cost and quality.

A generation's cost is the sum of its session's `model_called` costs since
`generation_started`; its quality is the session's latest `quality_scored`. A score often
arrives just after completion, so a completed generation waits up to `quality_wait_s` for
it before the event is posted to `{base}/api/v1/events`.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
from pydantic import SecretStr

from producers.contract import Event
from producers.events import EventType
from streams.sinks.delivery import Outbox, RetryPolicy
from streams.sinks.health import SinkStats
from streams.sinks.http import post_json
from streams.sinks.samples import tag

NANOS_PER_USD = Decimal(1_000_000_000)


@dataclass
class Generation:
    session_id: str
    service: str
    user_id: str | None = None
    cost_nanousd: int = 0
    model_calls: int = 0
    models: set[str] = field(default_factory=set)
    unpriced_calls: int = 0
    quality: float | None = None
    duration_ms: float | None = None
    completed_ms: int = 0
    due_s: float | None = None  # set when completed: post at this monotonic time at the latest


class GenerationTracker:
    """Per-session cost and quality, until each completed generation is handed out.

    Holds at most `max_sessions` sessions; the least recently seen is forgotten first and,
    if it was completed and waiting, counted in `evicted`. Completed generations wait in a
    heap by due time, so `due()` costs only what it hands out (it runs for every event).
    A generation that a new `generation_started` in its session ends early is handed out.
    """

    def __init__(self, quality_wait_s: float, max_sessions: int) -> None:
        self._wait_s = quality_wait_s
        self._max = max_sessions
        self._sessions: OrderedDict[str, Generation] = OrderedDict()
        self._waiting: list[tuple[float, int, Generation]] = []  # (due_s, seq, generation)
        self._seq = 0
        self._early: list[Generation] = []
        self.evicted = 0

    def observe(self, event: Event, now_s: float) -> None:
        kind = event.type
        if kind is EventType.GENERATION_STARTED:
            previous = self._sessions.pop(event.session_id, None)
            if previous is not None and previous.due_s is not None:
                self._early.append(previous)
        if kind not in (
            EventType.GENERATION_STARTED,
            EventType.MODEL_CALLED,
            EventType.QUALITY_SCORED,
            EventType.GENERATION_COMPLETED,
        ):
            return
        gen = self._session(event)
        data = event.data
        if kind is EventType.MODEL_CALLED:
            gen.model_calls += 1
            gen.models.add(str(data["model"]))
            cost = data.get("cost_nanousd")
            if isinstance(cost, int) and data.get("priced", True):
                gen.cost_nanousd += cost
            else:
                gen.unpriced_calls += 1
        elif kind is EventType.QUALITY_SCORED:
            gen.quality = float(data["score"])
            if gen.due_s is not None:
                self._schedule(gen, now_s)
        elif kind is EventType.GENERATION_COMPLETED:
            duration = data.get("duration_ms")
            gen.duration_ms = float(duration) if isinstance(duration, int | float) else None
            gen.completed_ms = event.timestamp
            self._schedule(gen, now_s if gen.quality is not None else now_s + self._wait_s)

    def due(self, now_s: float) -> list[Generation]:
        """Completed generations whose event should go out now (removed from the tracker)."""
        ready, self._early = self._early, []
        while self._waiting and self._waiting[0][0] <= now_s:
            due_s, _, gen = heapq.heappop(self._waiting)
            if gen.due_s == due_s and self._sessions.get(gen.session_id) is gen:
                del self._sessions[gen.session_id]
                ready.append(gen)
        return ready

    def _schedule(self, gen: Generation, due_s: float) -> None:
        """(Re)set when `gen` goes out; an entry left in the heap for an older time is
        skipped by `due()`, because the generation's `due_s` no longer matches it."""
        gen.due_s = due_s
        self._seq += 1
        heapq.heappush(self._waiting, (due_s, self._seq, gen))

    def _session(self, event: Event) -> Generation:
        gen = self._sessions.get(event.session_id)
        if gen is None:
            gen = Generation(event.session_id, event.service, event.user_id)
            self._sessions[event.session_id] = gen
            if len(self._sessions) > self._max:
                _, forgotten = self._sessions.popitem(last=False)
                self.evicted += forgotten.due_s is not None  # only a pending event is lost
        else:
            self._sessions.move_to_end(event.session_id)
        return gen


def usd(nanousd: int) -> str:
    """Exact decimal dollars, e.g. 12_300_000 -> '0.0123'."""
    return format((Decimal(nanousd) / NANOS_PER_USD).normalize(), "f")


def event_body(gen: Generation, env: str) -> dict[str, Any]:
    """The /api/v1/events JSON for one completed generation."""
    quality = "n/a" if gen.quality is None else f"{gen.quality:g}"
    duration = "n/a" if gen.duration_ms is None else f"{gen.duration_ms:g} ms"
    lines = [
        f"session: {gen.session_id}",
        f"cost: ${usd(gen.cost_nanousd)} over {gen.model_calls} model calls",
        f"quality: {quality}",
        f"duration: {duration}",
    ]
    if gen.unpriced_calls:
        lines.append(f"unpriced model calls: {gen.unpriced_calls}")
    tags = [tag("service", gen.service), tag("env", env)]
    tags += [tag("model", model) for model in sorted(gen.models)]
    return {
        "title": f"Generation completed ({gen.service})",
        "text": "\n".join(lines),
        "date_happened": gen.completed_ms // 1000,
        "alert_type": "info",
        "priority": "low",
        "aggregation_key": gen.session_id[:100],
        "tags": tags,
    }


class DatadogEventsSink:
    name = "datadog_events"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        api_key: SecretStr,
        env: str,
        quality_wait_s: float,
        capacity: int,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._url = api_url.rstrip("/") + "/api/v1/events"
        self._api_key = api_key
        self._env = env
        self._clock = clock
        self.tracker = GenerationTracker(quality_wait_s, max_sessions=capacity)
        self.stats = SinkStats(self.name)
        self.outbox: Outbox[dict[str, Any]] = Outbox(
            self.stats, self._deliver, capacity=capacity, retry=retry
        )

    def offer(self, event: Event) -> None:
        self.tracker.observe(event, self._clock())
        self._hand_out()

    def flush(self) -> None:
        """Hand out every completed generation now, without waiting for its score (at stop)."""
        for gen in self.tracker.due(float("inf")):
            self.outbox.offer(event_body(gen, self._env))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.outbox.run())
            group.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self._hand_out()

    def _hand_out(self) -> None:
        for gen in self.tracker.due(self._clock()):
            self.outbox.offer(event_body(gen, self._env))
        self.stats.dropped += self.tracker.evicted
        self.tracker.evicted = 0

    async def _deliver(self, batch: list[dict[str, Any]]) -> int:
        headers = {"DD-API-KEY": self._api_key.get_secret_value()}
        for body in batch:
            await post_json(self._session, self._url, body, headers)
        return 0

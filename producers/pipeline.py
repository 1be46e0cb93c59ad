"""What every tracker of one client shares: the buffer, the sender, local aggregates, counts.

`emit()` is the one hot path: build a small tuple, append it under one lock, maybe wake
the sender, return. No model, no encoding, no I/O. After fork() the child gets a fresh
buffer and sender, so nothing the parent buffered is sent twice.
"""

from __future__ import annotations

import atexit
import os
import secrets
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from producers.attribution import current as current_attribution
from producers.budget import BudgetView
from producers.buffer import EventBuffer, Record
from producers.deferred import DeferredReports
from producers.dimensions import tags_problem
from producers.local_metrics import MetricAggregator, SeriesKey
from producers.local_tally import LocalTally, Tally
from producers.problems import InputProblems
from producers.sdk_settings import SdkSettings
from producers.sender import Sender

_time = time.time


@dataclass(frozen=True)
class Stats:
    """Delivery counts of one client (this process only)."""

    buffered: int  # accepted, not yet delivered (waiting or in flight)
    buffered_bytes: int  # their estimated size
    sent: int  # events acknowledged by Kafka
    dropped: int  # oldest events dropped because the buffer was full
    failed: int  # events Kafka refused for good (e.g. too large for the broker)
    retries: int  # reconnects and resend rounds
    errors: int  # Kafka errors seen (each followed by a retry unless counted in failed)
    resent: int  # records sent again after an error proved they were not written
    resent_uncertain: int  # records sent again after an error of unknown outcome
    metric_batches_sent: int
    control_sent: int
    invalid: dict[str, int] = field(default_factory=dict)  # bad input by kind
    callback_errors: int = 0
    connected: bool = False
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Pipeline:
    def __init__(self, settings: SdkSettings, service: str) -> None:
        self.settings = settings
        self.service = service
        self.flush_at = settings.flush_at
        self.problems = InputProblems()
        self.deferred = DeferredReports(self.problems, settings.flush_at)
        self.metrics = MetricAggregator()
        self.budget = BudgetView(settings.cost_timezone)
        self.default_session_id = f"{service}-{secrets.token_hex(6)}"
        self.closed = False
        self.fork_hooks: list[Callable[[], None]] = []  # run in a forked child
        self.recent: deque[Record] | None = (
            deque(maxlen=settings.local_view_size) if settings.local_view_size else None
        )
        self._start_sender()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _restart_in_child(ref))

    def _start_sender(self) -> None:
        self.buffer = EventBuffer(self.settings.max_buffer_events, self.settings.max_buffer_bytes)
        self.buffer.keep_tally(LocalTally())
        self.started_s = time.monotonic()
        self.sender = Sender(
            self.settings,
            self.service,
            self.buffer,
            self.metrics,
            self.budget,
            self.problems,
            self.deferred,
        )
        self.deferred.wake_with(self.sender.wake)
        self.sender.start()
        atexit.register(self.sender.close, self.settings.exit_timeout_s, "interpreter exit")

    def emit(
        self,
        event_type: str,
        data: dict[str, Any] | None,
        session_id: Any,
        user_id: Any,
        at: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> bool:
        """Queue one event for the sender (the hot path); `data` is snapshotted, not kept.

        `at` is the event's time in epoch seconds when it is not now. Per-call `tags` (over
        the client's) make a 6-tuple; without them the record stays the 5-tuple and the
        sender adds the client's tags. False when the event was refused.
        """
        if self.closed:
            self.problems.report("client_closed", "an event was tracked after close()")
            return False
        items = tuple(data.items()) if data else None
        if session_id is None or user_id is None:  # fill in from an enclosing pulse.session()
            context_session, context_user = current_attribution()
            session_id = session_id or context_session
            user_id = user_id or context_user
        when = _time() if at is None else at
        record: Record
        if tags is None:
            record = (event_type, when, session_id or self.default_session_id, user_id, items)
        else:
            merged = {**self.settings.tags, **tags} if type(tags) is dict else tags
            problem = tags_problem(merged)
            if problem is not None:
                self.problems.report("invalid_tags", f"a {event_type} event was dropped: {problem}")
                return False
            sid = session_id or self.default_session_id
            record = (event_type, when, sid, user_id, items, merged)
        if self.buffer.put(record) >= self.flush_at and not self.sender.wake_pending:
            self.sender.wake()
        recent = self.recent
        if recent is not None:
            recent.append(record)
        return True

    def tally(self) -> Tally:
        """This process's counts of what it tracked (producers/local_tally.py)."""
        self.deferred.run()
        return self.buffer.tally() or Tally()

    def fold(self, key: SeriesKey, value: float, unit: str) -> None:
        self.metrics.add(key, value, unit)

    def flush(self, timeout: float | None) -> bool:
        self.deferred.run()
        return self.sender.flush(timeout)

    def close(self, timeout: float | None) -> bool:
        if self.closed:
            return self.sender.pending() == 0
        self.deferred.run()
        self.closed = True
        return self.sender.close(self.settings.shutdown_timeout_s if timeout is None else timeout)

    def stats(self) -> Stats:
        self.deferred.run()
        sender = self.sender
        buffered, buffered_bytes = self.buffer.pending()
        return Stats(
            buffered=buffered,
            buffered_bytes=buffered_bytes,
            sent=sender.sent,
            dropped=self.buffer.dropped,
            failed=sender.failed,
            retries=sender.retries,
            errors=sender.errors,
            resent=sender.resent,
            resent_uncertain=sender.resent_uncertain,
            metric_batches_sent=sender.metric_batches_sent,
            control_sent=sender.control_sent,
            invalid=self.problems.counts(),
            callback_errors=self.budget.callback_errors,
            connected=sender.connected,
            last_error=sender.last_error,
        )

    def restart_after_fork(self) -> None:
        """In a forked child: drop the parent's buffer and window, start a sender of our own."""
        _orphans.append(self.sender)  # keep it referenced: its sockets belong to the parent
        self.problems.renew_lock()
        self.deferred.clear()
        self.metrics.restart_after_fork()
        for hook in self.fork_hooks:
            hook()
        self.budget.after_fork()
        if self.recent is not None:
            self.recent.clear()
        if not self.closed:
            self._start_sender()


_orphans: list[Sender] = []


def _restart_in_child(ref: weakref.ReferenceType[Pipeline]) -> None:
    pipeline = ref()
    if pipeline is not None:
        pipeline.restart_after_fork()

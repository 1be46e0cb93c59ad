"""EventCollector: track() any EventType, plus a bounded local view for debugging.

track() checks the typed `data` of each type where it is made (producers/data_check.py,
the worker's own rules): an event the worker would dead-letter is counted in
`stats().invalid` under the DLQ's reason (missing_field, invalid_field, absurd_value) and
warned about once, and is not sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from producers.data_check import FAST_CHECKS, believable, data_problem
from producers.events import EVENT_ALIASES, EventType
from producers.pipeline import Pipeline
from producers.shapes import EventView

_CANONICAL: dict[str, str] = {
    member.value: member.value for member in EventType if member is not EventType.METRIC_BATCH
}
_CANONICAL.update({alias: canonical.value for alias, canonical in EVENT_ALIASES.items()})
_EVENT_TYPES: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    name: (canonical, FAST_CHECKS.get(canonical, believable))
    for name, canonical in _CANONICAL.items()
}
"""Every name track() accepts: the canonical type it is sent as, and its data's fast check."""
_EMPTY: dict[str, Any] = {}


class EventCollector:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._emit = pipeline.emit

    def track(
        self,
        event_type: str,
        data: dict[str, Any] | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """Queue one event (this process's buffer); never blocks, never raises. `data` is copied.

        Bad `data` for its type is counted in stats().invalid by reason, not sent.
        """
        try:
            known = _EVENT_TYPES.get(event_type) if type(event_type) is str else None
            if known is None:
                self._pipeline.problems.report(
                    "unknown_event_type",
                    f"event type {event_type!r:.60} is not a producers.events.EventType",
                )
                return
            if data is None:
                data = _EMPTY
            elif type(data) is not dict:
                self._pipeline.problems.report(
                    "invalid_data", f"event data must be a dict, not {type(data).__name__}"
                )
                return
            canonical, data_ok = known
            if not data_ok(data):
                problem = data_problem(canonical, data)
                if problem is not None:
                    self._pipeline.problems.report(*problem)
                    return
            self._emit(canonical, data, session_id, user_id)
        except Exception as exc:  # the caller must never see our failure
            self._pipeline.problems.report(
                "internal_error", f"track() failed inside the SDK: {exc}"
            )

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything this process tracked so far; True when Kafka acknowledged it
        within `timeout`. (The specification's flush(): Promise<void> is aflush().)"""
        return self._pipeline.flush(timeout)

    async def aflush(self, timeout: float | None = 10.0) -> bool:
        """flush() for async code: waits in a worker thread, never blocks the loop."""
        return await asyncio.to_thread(self._pipeline.flush, timeout)

    def get_events(self) -> list[EventView]:
        """This process's most recent tracked events (at most local_view_size), oldest first,
        in the specification's Event shape (timestamp in epoch ms)."""
        recent = self._pipeline.recent
        if recent is None:
            return []
        return [
            EventView(
                type=event_type,
                timestamp=int(ts * 1000),
                session_id=session_id,
                user_id=user_id,
                data=dict(items) if items else {},
            )
            for event_type, ts, session_id, user_id, items in list(recent)
        ]

    def clear_events(self) -> None:
        """Empty this process's local view (what was tracked is still sent)."""
        if self._pipeline.recent is not None:
            self._pipeline.recent.clear()

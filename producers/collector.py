"""EventCollector: track() any EventType, plus a bounded local view for debugging.

The typed `data` of each tracked event is checked in this process, before it is sent
(producers/data_check.py, the worker's own rules, run by the sender thread as it encodes
the event, so track() itself stays a tuple append): an event the worker would dead-letter
is counted in `stats().invalid` under the DLQ's reason (missing_field, invalid_field,
absurd_value), warned about once, and not sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from producers.events import EVENT_ALIASES, EventType
from producers.pipeline import Pipeline
from producers.shapes import EventView

_EVENT_TYPES: dict[str, str] = {
    member.value: member.value for member in EventType if member is not EventType.METRIC_BATCH
}
_EVENT_TYPES.update({alias: canonical.value for alias, canonical in EVENT_ALIASES.items()})
"""Every name track() accepts, mapped to the canonical type it is sent as."""


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
        tags: dict[str, str] | None = None,
    ) -> None:
        """Queue one event (this process's buffer); never blocks, never raises. `data` is
        copied; `tags` add to (and override) the client's tags for this event.

        Bad `data` for its type is counted in stats().invalid by reason (once the sender
        has looked at it: flush() to see it at once) and not sent.
        """
        try:
            canonical = _EVENT_TYPES.get(event_type) if type(event_type) is str else None
            if canonical is None:
                self._pipeline.problems.report(
                    "unknown_event_type",
                    f"event type {event_type!r:.60} is not a producers.events.EventType",
                )
                return
            if data is not None and type(data) is not dict:
                self._pipeline.problems.report(
                    "invalid_data", f"event data must be a dict, not {type(data).__name__}"
                )
                return
            self._emit(canonical, data, session_id, user_id, tags=tags)
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
        self._pipeline.deferred.run()  # reports an integration deferred (producers/deferred.py)
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
            for event_type, ts, session_id, user_id, items, *_ in list(recent)
        ]

    def clear_events(self) -> None:
        """Empty this process's local view (what was tracked is still sent)."""
        if self._pipeline.recent is not None:
            self._pipeline.recent.clear()

"""The bounded FIFO between the caller's threads and the sender thread.

Callers append small tuples under one lock and return; nothing else happens on their path.
Events the sender has taken but Kafka has not yet acknowledged still count toward the
limits ("held"), so memory stays bounded while Kafka is down. When a limit is exceeded the
OLDEST waiting events are dropped, and every drop is counted.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

Items = tuple[tuple[str, Any], ...] | None
Record = tuple[str, float, Any, Any, Items] | tuple[str, float, Any, Any, Items, dict[str, str]]
"""(event_type, time.time(), session_id, user_id, data as a tuple of items or None), plus
the event's tags when the call gave its own (else the client's apply).

Data is held as a tuple of (key, value) pairs: a shallow snapshot that is about half the
size of a dict, which is what keeps a buffered event near 250 bytes.
"""

RECORD_BASE_BYTES = 200
"""Estimated bytes of one buffered event without data (tuple, timestamp, its encoding)."""
DATA_ITEM_BYTES = 64
"""Estimated bytes per data item."""


def estimated_bytes(record: Record) -> int:
    items = record[4]
    return RECORD_BASE_BYTES if items is None else RECORD_BASE_BYTES + DATA_ITEM_BYTES * len(items)


class EventBuffer:
    """Bounded FIFO of tracked events; drops (and counts) the oldest when full."""

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: deque[Record] = deque()
        self._bytes = 0
        self._held_events = 0
        self._held_bytes = 0
        self.accepted = 0
        self.removed = 0  # taken by the sender or dropped, in FIFO order
        self.dropped = 0

    def put(self, record: Record) -> int:
        """Append one event; returns how many wait to be taken."""
        with self._lock:
            items = self._items
            items.append(record)
            self.accepted += 1
            self._bytes += estimated_bytes(record)
            if (
                len(items) + self._held_events > self.max_events
                or self._bytes + self._held_bytes > self.max_bytes
            ):
                self._drop_oldest()
            return len(items)

    def _drop_oldest(self) -> None:
        items = self._items
        while items and (
            len(items) + self._held_events > self.max_events
            or self._bytes + self._held_bytes > self.max_bytes
        ):
            self._bytes -= estimated_bytes(items.popleft())
            self.dropped += 1
            self.removed += 1

    def take(self, max_events: int, max_bytes: int) -> tuple[list[Record], int]:
        """Move up to the limits from the head to "held"; returns them and `removed` after."""
        taken: list[Record] = []
        size = 0
        with self._lock:
            items = self._items
            while items and len(taken) < max_events and (not taken or size < max_bytes):
                record = items.popleft()
                taken.append(record)
                size += estimated_bytes(record)
            self._bytes -= size
            self._held_events += len(taken)
            self._held_bytes += size
            self.removed += len(taken)
            return taken, self.removed

    def release(self, events: int, size: int) -> None:
        """The sender is done with `events` held events (delivered or given up)."""
        with self._lock:
            self._held_events -= events
            self._held_bytes -= size

    def waiting(self) -> int:
        return len(self._items)

    def pending(self) -> tuple[int, int]:
        """(events, estimated bytes) waiting or held."""
        with self._lock:
            return len(self._items) + self._held_events, self._bytes + self._held_bytes

"""Per-session quality state of one source partition: the recent sessions in memory, every
open one in the partition's RocksDB (`s:<session id>` rows, written after each commit).

Sessions wait up to `GENPULSE_SESSION_IDLE_S` (30 min) for an approval or an edit, so at a
steady rate their number grows for that long; keeping them all as Python lists made the
worker's heap grow with them. Only the last few thousand touched stay parsed here; an older
one is read back when its next event arrives, and the idle sweep scans the stored rows.

A session is `[generation start ms or 0, last completion ms or 0, edited 0/1, last seen ms,
flags, last stream start ms or 0, streams open]`; `flags` says whether the last completion
already has its outcome (`DONE`) and whether the generation was upgraded (`UPGRADED` while it
runs, `UPGRADE_COUNTED` once counted). Rows stored before the last three existed read as 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import orjson

HOT_SESSIONS = 500  # parsed sessions kept per partition after a commit
FIELDS = 7
DONE, UPGRADED, UPGRADE_COUNTED = 1, 2, 4


class SessionRows(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def session_rows(self) -> Iterator[tuple[str, bytes]]: ...


class Sessions:
    """Sessions of one partition; changes are collected for the changelog (take_changes)."""

    def __init__(self, rows: SessionRows | None = None) -> None:
        self.rows = rows  # None: everything stays in memory (no store behind)
        self.hot: dict[str, list[int]] = {}
        self.changed: set[str] = set()
        self.dropped: set[str] = set()  # dropped since the last take_changes, still stored
        self.in_flight = 0
        self.streams_in_flight = 0

    def load(self) -> None:
        """Count the stored sessions' in-flight generations and streams (after a restore)."""
        self.in_flight = self.streams_in_flight = 0
        for _, s in self._stored():
            self.in_flight += bool(s[0])
            self.streams_in_flight += s[6]

    def get(self, sid: str) -> list[int] | None:
        s = self.hot.get(sid)
        if s is None and self.rows is not None and sid not in self.dropped:
            blob = self.rows.get("s:" + sid)
            if blob is not None:
                s = self.hot[sid] = _parse(blob)
        return s

    def create(self, sid: str, ts: int) -> list[int]:
        s = self.hot[sid] = [0, 0, 0, ts, 0, 0, 0]
        self.dropped.discard(sid)
        return s

    def set_started(self, s: list[int], ts: int) -> None:
        """Set or clear (ts=0) the in-flight generation start, keeping the count."""
        self.in_flight += bool(ts) - bool(s[0])
        s[0] = ts

    def stream_started(self, s: list[int], ts: int) -> None:
        s[5] = ts
        s[6] += 1
        self.streams_in_flight += 1

    def stream_ended(self, s: list[int]) -> None:
        if s[6]:
            s[6] -= 1
            self.streams_in_flight -= 1

    def drop(self, sid: str) -> None:
        s = self.hot.pop(sid)
        self.in_flight -= bool(s[0])
        self.streams_in_flight -= s[6]
        self.changed.discard(sid)
        self.dropped.add(sid)

    def take_changes(self) -> tuple[dict[str, list[int]], set[str]]:
        """Sessions changed and dropped since the last call (for the changelog)."""
        changed = {sid: self.hot[sid] for sid in self.changed}
        dropped = self.dropped
        self.changed, self.dropped = set(), set()
        return changed, dropped

    def trim(self) -> None:
        """After the changes are stored: keep only the most recently loaded sessions parsed."""
        if self.rows is None or len(self.hot) <= HOT_SESSIONS:
            return
        for sid in list(self.hot)[: len(self.hot) - HOT_SESSIONS]:
            if sid not in self.changed:
                del self.hot[sid]

    def sweep(self, now: int, idle_ms: int, stale_ms: int) -> None:
        """Drop sessions idle past `idle_ms`; clear generations and streams in flight past
        `stale_ms`."""
        for sid, s in list(self._all()):
            if now - s[3] > idle_ms:
                self.hot.setdefault(sid, s)
                self.drop(sid)
                continue
            if s[0] and now - s[0] > stale_ms:
                s = self.hot.setdefault(sid, s)
                self.set_started(s, 0)
                self.changed.add(sid)
            if s[6] and now - s[5] > stale_ms:
                s = self.hot.setdefault(sid, s)
                self.streams_in_flight -= s[6]
                s[6] = 0
                self.changed.add(sid)

    def _all(self) -> Iterator[tuple[str, list[int]]]:
        yield from self.hot.items()
        for sid, s in self._stored():
            if sid not in self.hot and sid not in self.dropped:
                yield sid, s

    def _stored(self) -> Iterator[tuple[str, list[int]]]:
        if self.rows is not None:
            for key, blob in self.rows.session_rows():
                yield key[2:], _parse(blob)

    def __len__(self) -> int:
        """Open sessions (stored ones included; a scan when a store is behind)."""
        return sum(1 for _ in self._all())


def _parse(blob: bytes) -> list[int]:
    s: list[int] = orjson.loads(blob)
    if len(s) < FIELDS:
        s.extend([0] * (FIELDS - len(s)))
    return s

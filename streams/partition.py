"""One source partition's aggregation: decode, dead-letter, fold into partials, keep live state.

Everything here is a pure function of the records in offset order (event time, never the
wall clock), so replaying the same records from the same state gives the same result; that
is what makes a restart after SIGKILL exact (see docs/architecture.md).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from producers.contract import EventDecodeError, decode_event
from producers.metric_batch import decode_metric_batch
from streams import sketches
from streams.budget_scopes import budget_scopes
from streams.dedup import IdRows, SeenEvents
from streams.keys import HOUR_MS, MINUTE_MS
from streams.partial import Partial, Targets, series_name
from streams.sessions import DONE, UPGRADE_COUNTED, UPGRADED, SessionRows, Sessions
from streams.slices import TOTAL_CELL, CellKey, empty_row
from streams.slices import add_event as add_to_row
from streams.validate import absurd, quick_valid

MAX_ERRORS = 100
SWEEP_MS = 60_000


class Record(Protocol):
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Rules:
    """What the partition folding needs from the settings."""

    targets: Targets = field(default_factory=Targets)
    cost_timezone: str = "UTC"
    session_idle_ms: int = 1_800_000
    in_flight_stale_ms: int = 600_000
    max_future_ms: int = 3_600_000
    max_event_bytes: int = 64 * 1024
    dedup_horizon_ms: int = 86_400_000  # 0: every copy of an event is counted


Cells = dict[int, dict[CellKey, Partial]]  # minute -> cell -> partial
Tables = dict[int, dict[str, dict[str, list[int]]]]  # minute -> dimension -> value -> figures


@dataclass
class BatchOutput:
    """What one batch changed: buckets touched (per cell, per high-cardinality value), dead
    letters, spend per scope and minute."""

    cells: Cells = field(default_factory=dict)
    tables: Tables = field(default_factory=dict)
    dead_letters: list[tuple[bytes | None, dict[str, Any]]] = field(default_factory=list)
    spend: dict[tuple[str, int], int] = field(default_factory=dict)  # (scope, minute) -> nanousd
    breakers: list[tuple[str, str, int]] = field(default_factory=list)
    good: int = 0

    @property
    def minutes(self) -> dict[int, Partial]:
        """Each minute's whole partial (the merge of its cells)."""
        out = {}
        for minute, in_minute in self.cells.items():
            total = out[minute] = Partial()
            for p in in_minute.values():
                total.merge(p)
        return out


class PartitionState:
    """Live state of one source partition: sessions, in-flight, breakers, queue, errors."""

    def __init__(
        self,
        source: str,
        rules: Rules,
        session_rows: SessionRows | None = None,
        id_rows: IdRows | None = None,
    ) -> None:
        self.source = source  # e.g. "events:3"
        self.rules = rules
        self.seen = (
            SeenEvents(id_rows, rules.dedup_horizon_ms) if rules.dedup_horizon_ms > 0 else None
        )
        self.next_offset: int | None = None
        self.watermark_ms = 0
        self.last_sweep_ms = 0
        # written as "s:<id>" rows (streams.sessions), not in the live row
        self.sessions = Sessions(session_rows)
        self.breakers: dict[str, dict[str, Any]] = {}
        self.queue_depth: dict[str, list[int]] = {}
        self.errors: list[dict[str, Any]] = []
        self._zone = ZoneInfo(rules.cost_timezone)
        self._day_of_hour: dict[int, str] = {}

    # -- stored form (one changelog row) ---------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "next_offset": self.next_offset,
            "watermark_ms": self.watermark_ms,
            "last_sweep_ms": self.last_sweep_ms,
            "breakers": self.breakers,
            "queue_depth": self.queue_depth,
            "errors": self.errors,
        }

    def load(self, obj: dict[str, Any]) -> None:
        self.next_offset = obj.get("next_offset")
        self.watermark_ms = obj.get("watermark_ms", 0)
        self.last_sweep_ms = obj.get("last_sweep_ms", 0)
        self.breakers = obj.get("breakers", {})
        self.queue_depth = obj.get("queue_depth", {})
        self.errors = obj.get("errors", [])

    def take_session_changes(self) -> tuple[dict[str, list[int]], set[str]]:
        """Sessions changed and dropped since the last call (for the changelog)."""
        return self.sessions.take_changes()

    def live_view(self) -> dict[str, Any]:
        """The Redis `live` JSON (docs/snapshots.md)."""
        return {
            "v": 1,
            "watermark_ms": self.watermark_ms,
            "in_flight": self.sessions.in_flight,
            "streams_in_flight": self.sessions.streams_in_flight,
            "queue_depth": self.queue_depth,
            "breakers": self.breakers,
            "errors": self.errors[-MAX_ERRORS:][::-1],
        }

    def day_of(self, minute_ms: int) -> str:
        """Calendar day of a minute in the cost time zone (offsets are whole minutes)."""
        hour = minute_ms - minute_ms % HOUR_MS
        day = self._day_of_hour.get(hour)
        if day is None:
            day = datetime.fromtimestamp(hour / 1000, self._zone).date().isoformat()
            if len(self._day_of_hour) > 10_000:
                self._day_of_hour.clear()
            self._day_of_hour[hour] = day
        return day

    # -- folding ---------------------------------------------------------------------------

    def fold_events(self, records: Iterable[Record], topic: str, partition: int) -> BatchOutput:
        out = BatchOutput()
        cells = out.cells
        tables = out.tables
        targets = self.rules.targets
        loads = orjson.loads
        first_time = None if self.seen is None else self.seen.first_time
        for record in records:
            if self.next_offset is not None and record.offset < self.next_offset:
                continue  # already in the state (replay after a crash)
            self.next_offset = record.offset + 1
            raw = record.value
            obj: Any = None
            try:
                if raw is None or len(raw) > self.rules.max_event_bytes:
                    raise ValueError
                obj = loads(raw)
            except ValueError:
                obj = None
            if obj is None or not quick_valid(obj):
                obj = self._slow_decode(record, topic, partition, out)
                if obj is None:
                    continue
            reason = absurd(obj, record.timestamp, self.rules.max_future_ms)
            if reason is not None:
                self._dead_letter(record, topic, partition, "absurd_value", reason, out)
                continue
            ts = obj["timestamp"]
            minute = ts - ts % MINUTE_MS
            kind = obj["type"]
            data = obj.get("data") or {}
            cell = (obj.get("service"), obj.get("environment"))
            in_minute = cells.get(minute)
            if in_minute is None:
                in_minute = cells[minute] = {}
            p = in_minute.get(cell)
            if p is None:
                p = in_minute[cell] = Partial()
            if first_time is not None and not first_time(obj["event_id"], ts, record.offset):
                p.duplicates += 1  # a resend: counted once already
                continue
            user = obj.get("user_id")
            p.add_event(kind, data, targets)
            tags = obj.get("tags")
            if user is not None or tags:
                _fold_values(tables, minute, user, tags, kind, data)
            if ts > self.watermark_ms:
                self.watermark_ms = ts
            if kind in SESSION_KINDS:
                self._session(kind, obj["session_id"], ts, p, data, cells, cell)
            elif kind == "model_called":
                self._spend(out, minute, obj, data)
            elif kind == "error_occurred":
                self.errors.append(
                    {
                        "time_ms": ts,
                        "type": data["error_type"],
                        "message": data.get("message", ""),
                        "session_id": obj["session_id"],
                    }
                )
                if len(self.errors) > 2 * MAX_ERRORS:
                    del self.errors[:-MAX_ERRORS]
            elif kind.startswith("circuit_breaker_"):
                state = BREAKER_STATES[kind]
                current = self.breakers.get(data["name"])
                if current is None or current["since_ms"] <= ts:
                    self.breakers[data["name"]] = {"state": state, "since_ms": ts}
                out.breakers.append((data["name"], state, ts))
            elif kind == "queue_depth_sampled":
                current_q = self.queue_depth.get(obj["service"])
                if current_q is None or current_q[1] <= ts:
                    self.queue_depth[obj["service"]] = [data["depth"], ts]
            out.good += 1
            if self.watermark_ms - self.last_sweep_ms >= SWEEP_MS:
                self._sweep()  # at the record that moves event time on: cuts change nothing
        del self.errors[:-MAX_ERRORS]
        return out

    def fold_metric_batches(
        self, records: Iterable[Record], topic: str, partition: int
    ) -> BatchOutput:
        out = BatchOutput()
        targets = self.rules.targets
        for record in records:
            if self.next_offset is not None and record.offset < self.next_offset:
                continue
            self.next_offset = record.offset + 1
            try:
                batch = decode_metric_batch(record.value or b"")
            except EventDecodeError as exc:
                self._dead_letter(record, topic, partition, exc.reason.value, exc.message, out)
                continue
            folded = [
                (series_name(s.name, s.tags), sketches.from_wire(s.sketch)) for s in batch.series
            ]
            if any(s["min"] < 0 or s["max"] > 86_400_000 for _, s in folded if s["count"]):
                self._dead_letter(
                    record, topic, partition, "absurd_value", "a duration outside 0..1 day", out
                )
                continue
            minute = batch.start_ms - batch.start_ms % MINUTE_MS
            p = _bucket(out.cells, minute, (batch.service, None))
            p.count["metric_batch"] = p.count.get("metric_batch", 0) + 1
            for name, sketch in folded:
                p.add_series(name, sketch, targets)
            self.watermark_ms = max(self.watermark_ms, batch.end_ms)
            out.good += 1
        return out

    def fold_dead_letters(
        self, records: Iterable[Record], topic: str, partition: int
    ) -> BatchOutput:
        """Count every record on the dlq topic by reason, whoever wrote it (this worker, the
        API's /v1/collect), in the minute it was dead-lettered."""
        out = BatchOutput()
        for record in records:
            if self.next_offset is not None and record.offset < self.next_offset:
                continue
            self.next_offset = record.offset + 1
            try:
                letter = orjson.loads(record.value or b"")
                reason = str(letter["reason"])[:100]
                ts = int(letter.get("time_ms") or record.timestamp)
            except (ValueError, TypeError, KeyError):
                reason, ts = "unreadable_dead_letter", record.timestamp
            ts = ts if ts > 0 else self.watermark_ms
            _bucket(out.cells, ts, TOTAL_CELL).add_dlq(reason)
            self.watermark_ms = max(self.watermark_ms, ts)
            out.good += 1
        return out

    def _slow_decode(
        self, record: Record, topic: str, partition: int, out: BatchOutput
    ) -> dict[str, Any] | None:
        try:
            event = decode_event(record.value or b"", self.rules.max_event_bytes)
        except EventDecodeError as exc:
            self._dead_letter(record, topic, partition, exc.reason.value, exc.message, out)
            return None
        wire = event.to_wire()
        typed = event.typed_data()
        if typed is not None:
            wire["data"] = typed.model_dump()
        return wire

    def _dead_letter(
        self,
        record: Record,
        topic: str,
        partition: int,
        reason: str,
        message: str,
        out: BatchOutput,
    ) -> None:
        raw = record.value or b""
        out.dead_letters.append(
            (
                record.key,
                {
                    "v": 1,
                    "reason": reason,
                    "message": message[:500],
                    "source_topic": topic,
                    "partition": partition,
                    "offset": record.offset,
                    "raw": base64.b64encode(raw).decode(),
                    "time_ms": record.timestamp,
                },
            )
        )

    def _spend(
        self, out: BatchOutput, minute: int, obj: dict[str, Any], data: dict[str, Any]
    ) -> None:
        """A priced call's cost under every budget scope it belongs to, by event minute (the
        controller maps minutes to each budget's period and time zone)."""
        cost = data.get("cost_nanousd")
        if not data.get("priced", True) or cost is None:
            return
        spend = out.spend
        for scope in budget_scopes(obj, data):
            key = (scope, minute)
            spend[key] = spend.get(key, 0) + cost

    def _session(
        self,
        kind: str,
        session_id: str,
        ts: int,
        p: Partial,
        data: dict[str, Any],
        cells: Cells,
        cell: CellKey,
    ) -> None:
        """A generation's outcome, edits and upgrade, counted once per generation in the
        bucket of its completion (docs/metrics.md, "Outcomes"), in the cell of the event that
        decides it (docs/slicing.md), and its streams."""
        sessions = self.sessions
        s = sessions.get(session_id)
        if s is None:
            s = sessions.create(session_id, ts)
        sessions.changed.add(session_id)
        s[3] = max(s[3], ts)
        is_open = s[1] and not s[4] & DONE  # a completion waiting for its outcome
        if kind == "generation_started":
            sessions.set_started(s, ts)
            s[4] &= ~UPGRADED
        elif kind == "generation_completed":
            upgraded = s[4] & UPGRADED
            sessions.set_started(s, 0)
            s[1], s[2], s[4] = ts, 0, UPGRADE_COUNTED if upgraded else 0
            if upgraded:
                p.quality["upgraded_generations"] += 1
        elif kind == "generation_failed":
            sessions.set_started(s, 0)
            s[4] &= ~UPGRADED
        elif kind == "generation_canceled":
            if s[0]:  # canceled while running: a generation of its own, ended here
                q = p.quality
                q["canceled_running"] += 1
                q["canceled_generations"] += 1
                q["upgraded_generations"] += bool(s[4] & UPGRADED)
                sessions.set_started(s, 0)
                s[4] &= ~UPGRADED
            elif is_open:
                self._outcome(s, "canceled_generations", cells, cell)
        elif kind in EDIT_KINDS:
            if is_open and not s[2]:
                if ts >= s[1]:
                    p.observe("time_to_first_edit_ms", ts - s[1])
                _bucket(cells, s[1], cell).quality["edited_generations"] += 1
            if is_open:
                s[2] = 1
        elif kind == "uvp_approved":
            if data.get("approved", True) is False:
                p.quality["rejections"] += 1
            elif is_open:
                if ts >= s[1]:
                    p.observe("time_to_approval_ms", ts - s[1])
                edits = data.get("edits_made") or 0
                edited = s[2] or edits > 0
                outcome = "approved_after_edit" if edited else "approved_without_edit"
                self._outcome(s, outcome, cells, cell)
        elif kind == "uvp_regenerated":
            if is_open:
                self._outcome(s, "regenerated_generations", cells, cell)
        elif kind == "model_upgraded":
            if s[0]:
                s[4] |= UPGRADED
            elif is_open and not s[4] & UPGRADE_COUNTED:
                s[4] |= UPGRADE_COUNTED
                _bucket(cells, s[1], cell).quality["upgraded_generations"] += 1
        elif kind == "stream_started":
            sessions.stream_started(s, ts)
        elif kind == "stream_completed":
            duration = data.get("duration_ms")
            if duration is None and s[6] and ts >= s[5]:
                duration = ts - s[5]
            sessions.stream_ended(s)
            if duration is not None:
                p.observe("stream_duration_ms", duration)
        if not (s[0] or s[6]) and (not s[1] or s[4] & DONE):
            sessions.drop(session_id)  # nothing left to wait for: free the state

    def _outcome(self, s: list[int], field: str, cells: Cells, cell: CellKey) -> None:
        s[4] |= DONE
        _bucket(cells, s[1], cell).quality[field] += 1

    def _sweep(self) -> None:
        """Expire idle sessions and stale in-flight generations (event time, every minute:
        the sweep reads the stored sessions, and a catch-up moves event time fast). It runs
        right after the record that moves event time a minute past the last sweep, never at
        the end of a poll, so where polls are cut changes no figure (a sweep at the end of
        each poll once made a late cancel count as "canceled while running" or not, depending
        on whether its start and cancel were in one poll)."""
        now = self.watermark_ms
        if now - self.last_sweep_ms < SWEEP_MS:
            return
        self.last_sweep_ms = now
        self.sessions.sweep(now, self.rules.session_idle_ms, self.rules.in_flight_stale_ms)


EDIT_KINDS = frozenset({"uvp_edited", "transformation_edited", "benefit_reordered"})


def _bucket(cells: Cells, ts: int, cell: CellKey) -> Partial:
    """The batch's partial of a cell in the minute of `ts` (a generation's completion may be
    older)."""
    minute = ts - ts % MINUTE_MS
    in_minute = cells.get(minute)
    if in_minute is None:
        in_minute = cells[minute] = {}
    p = in_minute.get(cell)
    if p is None:
        p = in_minute[cell] = Partial()
    return p


def _fold_values(
    tables: Tables,
    minute: int,
    user: str | None,
    tags: dict[str, str] | None,
    kind: str,
    data: dict[str, Any],
) -> None:
    """Fold one event into the batch's rows of its user and of each of its tags."""
    in_minute = tables.get(minute)
    if in_minute is None:
        in_minute = tables[minute] = {}
    if user is not None:
        _row(in_minute, "user", user, kind, data)
    if tags:
        for key, value in tags.items():
            _row(in_minute, "tag:" + key, value, kind, data)


def _row(
    in_minute: dict[str, dict[str, list[int]]], dim: str, value: str, kind: str, data: Any
) -> None:
    rows = in_minute.get(dim)
    if rows is None:
        rows = in_minute[dim] = {}
    row = rows.get(value)
    if row is None:
        row = rows[value] = empty_row()
    add_to_row(row, kind, data)


SESSION_KINDS = frozenset(
    {
        "generation_started",
        "generation_completed",
        "generation_failed",
        "generation_canceled",
        "uvp_approved",
        "uvp_regenerated",
        "model_upgraded",
        "stream_started",
        "stream_completed",
        *EDIT_KINDS,
    }
)
BREAKER_STATES = {
    "circuit_breaker_opened": "open",
    "circuit_breaker_half_opened": "half_open",
    "circuit_breaker_closed": "closed",
}

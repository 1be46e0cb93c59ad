"""The aggregation engine: events and metric batches in, partial rows out, exactly once.

Per poll (up to `batch_max_records` records) and per source partition: fold the records
into minute partials (streams.partition), merge those into the minute, hour and day rows,
then in ONE Kafka transaction write the changed rows to the partition's changelog, the dead
letters to `<prefix>.dlq`, a roll-up (spend per budget scope, minute sketches, breaker
changes) to `<prefix>.worker-rollup` for the controller, and the input offsets. After the
commit the rows go to local RocksDB and are marked for the next Redis snapshot.

Why not a Faust agent per event: see docs/architecture.md (Faust's per-event path measured
~12k events/s here; this batch path is several times faster and exactly-once by Kafka
transactions instead of faust-streaming's exactly_once mode).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from streams import keys, memory, sketches
from streams.dedup import BLOCK
from streams.partial import Partial
from streams.partition import BatchOutput, PartitionState, Rules
from streams.probe import MemoryProbe
from streams.settings import WorkerSettings
from streams.slices import Table, encode_cell
from streams.snapshots import SnapshotWriter
from streams.store import RowStore, restore
from streams.totals import BucketTotal, merge_cells, settle

log = logging.getLogger("genpulse.worker")

HOT_MINUTES = 5  # minute rows kept parsed in memory; older ones are read from RocksDB
# ... and of those only the ones written to in the last minute of event time, the same for
# the previous hour's rows: a row holds full sketches and a table up to K values, so keeping
# idle ones parsed made the worker's memory climb for five minutes after start and step up at
# every hour (docs/architecture.md, "State sizes")
IDLE_MS = 60_000


class SourcePartition:
    """Everything the worker holds for one assigned source partition."""

    def __init__(
        self, tp: TopicPartition, kind: str, store: RowStore, rules: Rules, top_k: int
    ) -> None:
        self.tp = tp
        self.kind = kind  # "events", "metrics" or "dlq"
        self.field = f"{kind}:{tp.partition}"
        self.store = store
        self.state = PartitionState(self.field, rules, store, store if kind == "events" else None)
        self.rows: dict[str, Partial] = {}  # bucket rows and their cells (c:...)
        self.tables: dict[str, Table] = {}  # t:<level>:<bucket>:<dimension>
        self.top_k = top_k
        self.dirty: set[tuple[str, str]] = set()  # (level, bucket) whose totals to write
        self.totals: dict[tuple[str, str], BucketTotal] = {}  # hot buckets' running totals
        self.blobs: dict[str, bytes] = {}  # cell rows serialised since the last totals
        self.pruned_minute = 0
        self.written_at: dict[str, int] = {}  # minute/hour row or table -> watermark merged
        self.dropped: list[str] = []  # session rows to delete in this poll

    def row(self, key: str) -> Partial:
        row = self.rows.get(key)
        if row is None:
            blob = self.store.get(key)
            row = Partial.from_json(orjson.loads(blob)) if blob else Partial()
            self.rows[key] = row
        return row

    def bucket_total(self, level: str, bucket: str) -> BucketTotal:
        """A bucket's running total; built from its committed cells the first time."""
        entry = self.totals.get((level, bucket))
        if entry is None:
            prefix = f"c:{level}:{bucket}:"
            cells = dict(self.store.rows_between(prefix, f"c:{level}:{bucket};"))
            total = None
            if len(cells) > 1:
                total = merge_cells(self.row(key) for key in sorted(cells))
            entry = self.totals[(level, bucket)] = BucketTotal(set(cells), total)
        return entry

    def table(self, key: str) -> Table:
        table = self.tables.get(key)
        if table is None:
            blob = self.store.get(key)
            k = self.top_k
            table = Table.from_json(orjson.loads(blob), k) if blob else Table(k)
            self.tables[key] = table
        return table


def level_bucket(key: str) -> tuple[str, str]:
    """(level letter, bucket) of a bucket row key: `m:<ms>`, `c:h:<ms>:<cell>`,
    `t:d:<day>:<dimension>`."""
    kind, _, rest = key.partition(":")
    if kind == "c" or kind == "t":
        level, _, rest = rest.partition(":")
        return level, rest.partition(":")[0]
    return kind, rest


class Aggregator:
    def __init__(self, settings: WorkerSettings, snapshots: SnapshotWriter) -> None:
        self.settings = settings
        self.snapshots = snapshots
        self.rules = Rules(
            targets=settings.targets,
            cost_timezone=settings.cost_timezone,
            session_idle_ms=settings.session_idle_s * 1000,
            in_flight_stale_ms=settings.in_flight_stale_s * 1000,
            max_future_ms=settings.max_future_skew_s * 1000,
            max_event_bytes=settings.max_event_bytes,
            dedup_horizon_ms=settings.dedup_horizon_s * 1000,
        )
        self.group_id = f"{settings.app_id}-aggregator"
        self.topics = {
            settings.topic("events"): "events",
            settings.topic("metrics"): "metrics",
            settings.topic("dlq"): "dlq",  # counted by reason, whoever wrote them
        }
        self.parts: dict[TopicPartition, SourcePartition] = {}
        self.lock = asyncio.Lock()
        self.records_in = 0
        self.batches = 0
        self._stopping = False
        self._unloaded: set[TopicPartition] = set()  # assigned, but loading the state failed
        self._next_retry = 0.0
        self._next_trim = 0.0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._probe = MemoryProbe()
        snapshots.on_recovered.append(self.requeue_all)
        snapshots.before_flush.append(self.write_totals)
        self.ttl = {
            "m": settings.minute_retention_s,
            "h": settings.hour_retention_s,
            "d": settings.day_retention_s,
        }

    async def requeue_all(self) -> None:
        """Queue every row of every owned partition for Redis (after Redis was down)."""
        for part in self.parts.values():
            self._queue_snapshot(part, dict(part.store.bucket_rows()), polled=False)

    def changelog(self, kind: str) -> str:
        return self.settings.internal_topic(f"{kind}-changelog")

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        s = self.settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap,
            transactional_id=f"{s.app_id}-aggregator-{s.worker_id or 'solo'}",
            transaction_timeout_ms=s.transaction_timeout_ms,
            linger_ms=5,
            max_batch_size=1024 * 1024,
            max_request_size=8 * 1024 * 1024,
            compression_type=None if s.changelog_compression == "none" else s.changelog_compression,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=s.batch_max_records,
            fetch_max_bytes=32 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            max_poll_interval_ms=600_000,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(500, s.session_timeout_ms // 5),
        )
        self._consumer.subscribe(list(self.topics), listener=_Listener(self))
        await self._consumer.start()
        try:
            while not self._stopping:
                batch = await self._consumer.getmany(
                    timeout_ms=s.batch_wait_ms, max_records=s.batch_max_records
                )
                if batch:
                    async with self.lock:
                        await self._process(self._owned(batch))
                await self._retry_loads()
                if time.monotonic() >= self._next_trim:
                    self._next_trim = time.monotonic() + memory.TRIM_INTERVAL_S
                    memory.trim()
                self._probe.maybe(list(self.parts.values()), redis_pending=self.snapshots.pending)
        finally:
            async with self.lock:  # in Redis before the group hands the partitions on
                await self._release(set(self.parts))
            await self._consumer.stop()
            await self._producer.stop()

    def _owned(self, batch: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, list[Any]]:
        """Records of partitions whose state is loaded; others are fetched again later."""
        assert self._consumer is not None
        owned = {}
        for tp, records in batch.items():
            if tp in self.parts:
                owned[tp] = records
            elif tp in self._consumer.assignment():
                self._consumer.seek(tp, records[0].offset)  # assigned, state still loading
        return owned

    def stop(self) -> None:
        self._stopping = True

    # -- assignment --------------------------------------------------------------------------

    async def assign(self, tps: set[TopicPartition]) -> None:
        async with self.lock:
            await self._load(tps)

    async def _load(self, tps: set[TopicPartition]) -> None:
        """Load each partition's state; a failed one is retried from the poll loop (its
        records are fetched again meanwhile), never left half-open."""
        todo = sorted(tp for tp in tps if tp not in self.parts)
        results = await asyncio.gather(
            *(self._assign_one(tp) for tp in todo), return_exceptions=True
        )
        for tp, result in zip(todo, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("loading %s failed (%r); retrying", tp, result)
                self._unloaded.add(tp)
            else:
                self._unloaded.discard(tp)

    async def _retry_loads(self) -> None:
        assert self._consumer is not None
        if not self._unloaded or time.monotonic() < self._next_retry:
            return
        self._next_retry = time.monotonic() + 1.0
        async with self.lock:
            self._unloaded &= self._consumer.assignment()
            await self._load(set(self._unloaded))

    async def _assign_one(self, tp: TopicPartition) -> None:
        kind = self.topics[tp.topic]
        store = await RowStore.open(Path(self.settings.datadir) / f"{kind}-{tp.partition}")
        try:
            part = await self._restore_into(tp, kind, store)
        except BaseException:
            store.close()  # release RocksDB's LOCK now, not when a collector finds the frame
            raise
        self.parts[tp] = part
        # Redis may have missed the last commits before a crash: write every restored row
        self._queue_snapshot(part, dict(store.bucket_rows()), polled=False)

    async def _restore_into(
        self, tp: TopicPartition, kind: str, store: RowStore
    ) -> SourcePartition:
        assert self._consumer is not None
        changelog = TopicPartition(self.changelog(kind), tp.partition)
        rows = await restore(self.settings.kafka_bootstrap, changelog, store)
        part = SourcePartition(tp, kind, store, self.rules, self.settings.slice_top_k)
        live = store.get("live")
        if live:
            part.state.load(orjson.loads(live))
        part.state.sessions.load()
        if part.state.seen is not None:
            ids = part.state.seen.rebuild()
            if ids:
                log.info("%s: %d event ids remembered for de-duplication", tp, ids)
        if part.state.next_offset is not None:
            self._consumer.seek(tp, part.state.next_offset)
        else:
            committed = await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)
        log.info("assigned %s: %d rows restored, next offset %s", tp, rows, part.state.next_offset)
        return part

    async def revoke(self, tps: set[TopicPartition]) -> None:
        async with self.lock:
            self._unloaded -= tps
            await self._release(tps)

    async def _release(self, tps: set[TopicPartition]) -> None:
        """Give partitions up: their totals as committed, and everything queued for them,
        written to Redis before this returns (and so before the group can give them to
        another worker, whose values a late write of ours would overwrite)."""
        fields = set()
        for tp in tps:
            part = self.parts.pop(tp, None)
            if part is not None:
                self._write_totals(part)
                part.store.close()
                fields.add(part.field)
        if fields and not await self.snapshots.hand_over(
            lambda _key, field: _partition_of(field) in fields
        ):
            log.warning("redis unavailable at hand-over; %s left to their next owner", fields)

    # -- one poll ----------------------------------------------------------------------------

    async def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        if not batch:
            return
        assert self._producer is not None
        producer = self._producer
        written: list[tuple[SourcePartition, dict[str, bytes], list[str], TableChanges]] = []
        await producer.begin_transaction()
        try:
            futures = []
            offsets: dict[TopicPartition, int] = {}
            for tp, records in batch.items():
                part = self.parts[tp]
                if part.kind == "events":
                    out = part.state.fold_events(records, tp.topic, tp.partition)
                elif part.kind == "metrics":
                    out = part.state.fold_metric_batches(records, tp.topic, tp.partition)
                else:
                    out = part.state.fold_dead_letters(records, tp.topic, tp.partition)
                rows, tables = self._merge_rows(part, out)
                gone = self._expired(part) + part.dropped
                changelog = self.changelog(part.kind)
                for key, blob in [*rows.items(), *((key, None) for key in gone)]:
                    futures.append(
                        await producer.send(
                            changelog, blob, key=key.encode(), partition=tp.partition
                        )
                    )
                dlq = self.settings.topic("dlq")
                for raw_key, letter in out.dead_letters:
                    futures.append(await producer.send(dlq, orjson.dumps(letter), key=raw_key))
                rollup = _rollup(part.field, out)
                if rollup is not None:
                    futures.append(
                        await producer.send(
                            self.settings.internal_topic("rollup"), rollup, key=part.field.encode()
                        )
                    )
                offsets[tp] = part.state.next_offset or records[-1].offset + 1
                written.append((part, rows, gone, tables))
                self.records_in += len(records)
            await asyncio.gather(*futures)
            await producer.send_offsets_to_transaction(offsets, self.group_id)
            await producer.commit_transaction()
        except BaseException:
            log.exception("batch failed; stopping so state is rebuilt from the changelog")
            raise
        self.batches += 1
        for part, rows, gone, tables in written:
            for key, blob in rows.items():
                part.store.put(key, blob)
            seen = part.state.seen
            if seen is not None:
                seen.committed()
            for key in gone:
                if seen is not None and key.startswith(BLOCK):
                    seen.forget_block(key)
                part.store.delete(key)
                part.rows.pop(key, None)
                part.tables.pop(key, None)
                if key.startswith("c:"):
                    part.totals.pop(level_bucket(key), None)
            part.state.sessions.trim()
            self._queue_snapshot(part, rows, tables)
            self._evict(part)

    def _expired(self, part: SourcePartition) -> list[str]:
        """Rows past their retention (event time), checked once per minute of watermark."""
        minute = part.state.watermark_ms - part.state.watermark_ms % keys.MINUTE_MS
        if minute <= part.pruned_minute:
            return []
        part.pruned_minute = minute
        s = self.settings
        now = part.state.watermark_ms
        oldest_day = part.state.day_of(now - s.day_retention_s * 1000)
        gone = []
        for key in part.store.bucket_keys():
            kind, bucket = level_bucket(key)
            if (
                (kind == "m" and int(bucket) < now - s.minute_retention_s * 1000)
                or (kind == "h" and int(bucket) < now - s.hour_retention_s * 1000)
                or (kind == "d" and bucket < oldest_day)
            ):
                gone.append(key)
        if part.state.seen is not None:
            gone += part.state.seen.expired_blocks(now)
        return gone

    def _merge_rows(
        self, part: SourcePartition, out: BatchOutput
    ) -> tuple[dict[str, bytes], TableChanges]:
        """Fold the batch's cells into the minute, hour and day cell rows and its per-value
        figures into the bounded tables; serialise them. A bucket's whole partial is not a
        row of its own: it is the merge of its cells, kept running in memory
        (streams/totals.py) and written to Redis once per snapshot (`write_totals`)."""
        touched: dict[str, Partial] = {}
        watermark = part.state.watermark_ms
        for level, bucket, cell, added in self._cell_changes(part, out):
            key = f"c:{level}:{bucket}:{cell}"
            entry = part.bucket_total(level, str(bucket))  # before the poll touches it
            row = part.row(key)
            row.merge(added)
            touched[key] = row
            entry.add(key, added, part.row)
            if level != "d":
                part.written_at[key] = watermark
        rows = {key: orjson.dumps(row.to_json()) for key, row in touched.items()}
        tables: TableChanges = {}
        for minute, dimensions in out.tables.items():
            buckets = self._buckets(part, minute)
            for dimension, values in dimensions.items():
                for level, bucket in buckets[:2]:
                    part.written_at[f"t:{level}:{bucket}:{dimension}"] = part.state.watermark_ms
                for level, bucket in buckets:
                    key = f"t:{level}:{bucket}:{dimension}"
                    table = part.table(key)
                    admitted, spilled = table.merge(values)
                    before = tables.get(key)
                    if before is None:
                        tables[key] = (table, set(admitted), spilled)
                    else:
                        before[1].update(admitted)
                        tables[key] = (table, before[1], before[2] or spilled)
        for key, (table, _, _) in tables.items():
            rows[key] = orjson.dumps(table.to_json())
        changed, dropped = part.state.take_session_changes()
        for sid, session in changed.items():
            rows[f"s:{sid}"] = orjson.dumps(session)
        part.dropped = [f"s:{sid}" for sid in dropped]
        rows["live"] = orjson.dumps(part.state.to_json())
        if part.state.seen is not None:
            block = part.state.seen.take_block()
            if block is not None:
                rows[block[0]] = block[1]
        return rows, tables

    def _cell_changes(
        self, part: SourcePartition, out: BatchOutput
    ) -> list[tuple[str, int | str, str, Partial]]:
        """(level, bucket, encoded cell, what to add) of a batch: its minute partials as
        they are, and per hour and day each cell's minutes merged first, so a poll spread
        over many minutes merges each hour and day cell row (and total) once."""
        changes: list[tuple[str, int | str, str, Partial]] = []
        upper: dict[tuple[str, int | str, str], list[Partial]] = {}
        for minute, in_minute in out.cells.items():
            buckets = self._buckets(part, minute)
            for cell, cell_partial in in_minute.items():
                encoded = encode_cell(cell)
                changes.append(("m", minute, encoded, cell_partial))
                for level, bucket in buckets[1:]:
                    found = upper.get((level, bucket, encoded))
                    if found is None:
                        upper[(level, bucket, encoded)] = [cell_partial]
                    else:
                        found.append(cell_partial)
        combined: dict[tuple[int, ...], Partial] = {}  # the same minutes: the same merge
        for (level, bucket, encoded), found in upper.items():
            if len(found) == 1:
                changes.append((level, bucket, encoded, found[0]))
                continue
            ids = tuple(map(id, found))
            merged = combined.get(ids)
            if merged is None:
                merged = combined[ids] = merge_cells(found)
            changes.append((level, bucket, encoded, merged))
        return changes

    def _buckets(self, part: SourcePartition, minute: int) -> tuple[tuple[str, int | str], ...]:
        hour = minute - minute % keys.HOUR_MS
        return (("m", minute), ("h", hour), ("d", part.state.day_of(minute)))

    def _queue_snapshot(
        self,
        part: SourcePartition,
        rows: dict[str, bytes],
        tables: TableChanges | None = None,
        polled: bool = True,
    ) -> None:
        """Queue rows for Redis and mark their buckets' totals for the next snapshot; a table
        writes only the values `tables` says changed (all of them when it is not given: a
        restore or Redis coming back, `polled` False)."""
        s = self.settings
        prefix = s.key_prefix
        put = self.snapshots.put
        for key, blob in rows.items():
            kind, _, rest = key.partition(":")
            if kind == "c":
                level, _, rest = rest.partition(":")
                bucket, _, cell = rest.partition(":")
                name = keys.slice_cells(prefix, keys.LEVEL_NAMES[level], bucket)
                put(name, f"{part.field}|{cell}", blob, self.ttl[level])
                part.dirty.add((level, bucket))
                if polled:
                    part.blobs[key] = blob
            elif kind == "t":
                level, bucket, dimension = rest.split(":", 2)
                name = keys.slice_table(prefix, keys.LEVEL_NAMES[level], bucket, dimension)
                change = tables.get(key) if tables is not None else None
                if change is None:
                    table = Table.from_json(orjson.loads(blob), part.top_k)
                    values, spilled = set(table.values), True
                else:
                    table, values, spilled = change
                ttl = self.ttl[level]
                for value in values:
                    put(name, f"{part.field}|{value}", orjson.dumps(table.values[value]), ttl)
                if spilled:
                    put(name, f"{part.field}#other", orjson.dumps(table.other), ttl)
                    if table.bloom is not None:
                        put(name, f"{part.field}#bloom", bytes(table.bloom), ttl)
        put(keys.live(prefix), part.field, orjson.dumps(part.state.live_view()), None)

    async def write_totals(self) -> None:
        """Before each snapshot: every changed bucket's whole partial (the merge of its
        cells, as committed: the running total, settled) to `P:snap:<level>:<bucket>`,
        where unsliced reads find it."""
        async with self.lock:
            for part in self.parts.values():
                self._write_totals(part)

    def _write_totals(self, part: SourcePartition) -> None:
        prefix = self.settings.key_prefix
        for level, bucket in sorted(part.dirty):
            entry = part.totals.get((level, bucket))
            if entry is None:  # restored or Redis back: merge the stored cells once
                cells = list(
                    part.store.rows_between(f"c:{level}:{bucket}:", f"c:{level}:{bucket};")
                )
                if len(cells) == 1:
                    blob = part.blobs.get(cells[0][0], cells[0][1])  # the cell is the bucket
                else:
                    total = merge_cells(self._parsed(part, key, stored) for key, stored in cells)
                    blob = orjson.dumps(total.to_json())
            elif entry.total is None:  # one cell
                (key,) = entry.cells
                blob = part.blobs.get(key) or part.store.get(key) or b""
            else:
                parsed = [self._parsed(part, key) for key in sorted(entry.cells)]
                blob = orjson.dumps(settle(entry.total, parsed).to_json())
            name = f"{prefix}:snap:{keys.LEVEL_NAMES[level]}:{bucket}"
            self.snapshots.put(name, part.field, blob, self.ttl[level])
        part.dirty.clear()
        part.blobs.clear()

    @staticmethod
    def _parsed(part: SourcePartition, key: str, stored: bytes | None = None) -> Partial:
        """A committed cell row, parsed (without keeping it parsed)."""
        row = part.rows.get(key)
        if row is not None:
            return row
        blob = stored if stored is not None else part.store.get(key)
        return Partial.from_json(orjson.loads(blob)) if blob else Partial()

    def _evict(self, part: SourcePartition) -> None:
        """Keep parsed only the rows new events still touch: those of the last few minutes
        written to in the last minute, the current hour's and the previous hour's while it
        is still written to, today's, and until the next snapshot the cells of every bucket
        whose totals it must merge. Others are read back from RocksDB when an event needs
        them."""
        now = part.state.watermark_ms
        minute_horizon = now - HOT_MINUTES * keys.MINUTE_MS
        idle_before = now - IDLE_MS
        written_at = part.written_at
        for key in [k for k, at in written_at.items() if at < idle_before]:
            del written_at[key]
        this_hour = now - now % keys.HOUR_MS
        hour_horizon = this_hour - keys.HOUR_MS
        today = part.state.day_of(now - now % keys.MINUTE_MS)
        dirty = part.dirty  # buckets whose totals the next snapshot merges from these rows
        for parsed in (part.rows, part.tables):
            for key in list(parsed):
                kind, bucket = level_bucket(key)
                if (kind, bucket) in dirty and parsed is part.rows:
                    continue
                if (
                    (kind == "m" and (int(bucket) < minute_horizon or key not in written_at))
                    or (
                        kind == "h"
                        and (
                            int(bucket) < hour_horizon
                            or (int(bucket) < this_hour and key not in written_at)
                        )
                    )
                    or (kind == "d" and bucket < today)
                ):
                    del parsed[key]
        if part.totals:
            hot = {level_bucket(key) for key in part.rows if key.startswith("c:")}
            for lb in [lb for lb in part.totals if lb not in hot and lb not in dirty]:
                del part.totals[lb]


def _partition_of(field: str) -> str:
    """The source partition (`events:3`) a Redis field belongs to: totals and live state
    are the partition itself, cells `<partition>|<cell>`, tables `<partition>|<value>` and
    `<partition>#other`."""
    return field.partition("|")[0].partition("#")[0]


TableChanges = dict[str, tuple[Table, set[str], bool]]  # key -> (table, values changed, other?)


def _rollup(source: str, out: BatchOutput) -> bytes | None:
    """What the controller needs from one batch: spend, minute sketches, breaker changes."""
    if not (out.spend or out.cells or out.breakers):
        return None
    minutes = {}
    for minute, in_minute in out.cells.items():
        started = failed = 0
        parts: dict[str, list[sketches.Sketch]] = {}
        for p in in_minute.values():
            started += p.count.get("generation_started", 0)
            failed += p.count.get("generation_failed", 0)
            for name, sketch in p.sketch.items():
                parts.setdefault(name, []).append(sketch)
        merged = {}
        for name, found in parts.items():
            if len(found) == 1:
                merged[name] = found[0]  # only serialised below
            else:
                merged[name] = sketches.empty()
                for sketch in found:
                    sketches.merge_into(merged[name], sketch)
        if not (merged or started or failed):
            continue
        minutes[str(minute)] = {
            "started": started,
            "failed": failed,
            "sketch": {k: sketches.to_wire(v) for k, v in merged.items()},
        }
    return orjson.dumps(
        {
            "v": 1,
            "source": source,
            "spend": [[scope, minute, n] for (scope, minute), n in sorted(out.spend.items())],
            "minutes": minutes,
            "breakers": out.breakers,
            "time_ms": int(time.time() * 1000),
        }
    )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.aggregator.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.aggregator.assign(set(assigned))

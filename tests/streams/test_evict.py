"""The worker keeps parsed only the rows new events still write to (docs/architecture.md,
"State sizes"): idle minute rows and the previous hour's idle rows leave memory, and a row
read back from RocksDB holds exactly what was committed."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiokafka import TopicPartition

from streams.aggregator import Aggregator, SourcePartition
from streams.keys import HOUR_MS, MINUTE_MS
from streams.partial import Partial
from streams.partition import BatchOutput, Rules
from streams.settings import WorkerSettings
from streams.snapshots import SnapshotWriter
from streams.store import RowStore

NOW = 1_780_000_000_000 - 1_780_000_000_000 % HOUR_MS + 30 * MINUTE_MS  # half past an hour
CELL = ("svc", "prod")


def one_event_at(ts: int) -> BatchOutput:
    out = BatchOutput()
    p = Partial()
    p.count["generation_started"] = 1
    out.cells[ts - ts % MINUTE_MS] = {CELL: p}
    out.tables[ts - ts % MINUTE_MS] = {"user": {"u1": [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]}}
    return out


def poll(agg: Aggregator, part: SourcePartition, ts: int, watermark: int) -> None:
    """What one committed poll does to the parsed rows: merge, store, evict."""
    part.state.watermark_ms = watermark
    rows, _ = agg._merge_rows(part, one_event_at(ts))
    for key, blob in rows.items():
        part.store.put(key, blob)
    part.dirty.clear()  # the snapshot ran
    agg._evict(part)


async def test_idle_rows_leave_memory_and_come_back_exact(tmp_path: Path) -> None:
    settings = WorkerSettings(kafka_bootstrap="127.0.0.1:1", redis_url="redis://127.0.0.1:1")
    agg = Aggregator(settings, SnapshotWriter(settings.redis_url, "p"))
    store = await RowStore.open(tmp_path / "events-0")
    try:
        part = SourcePartition(TopicPartition("e", 0), "events", store, Rules(), 1000)
        this_hour = NOW - NOW % HOUR_MS
        last_hour = this_hour - HOUR_MS
        poll(agg, part, last_hour + 59 * MINUTE_MS, NOW)  # a late event of the last hour
        poll(agg, part, NOW - 3 * MINUTE_MS, NOW)
        cell = orjson.dumps(CELL).decode()
        old_minute = f"c:m:{NOW - 3 * MINUTE_MS}:{cell}"
        last_hour_row = f"c:h:{last_hour}:{cell}"
        assert old_minute in part.rows and last_hour_row in part.rows  # written just now
        # two minutes of event time later, only the current minute is written to
        later = NOW + 2 * MINUTE_MS
        poll(agg, part, later, later)
        assert old_minute not in part.rows and f"t:m:{NOW - 3 * MINUTE_MS}:user" not in part.tables
        assert last_hour_row not in part.rows and f"t:h:{last_hour}:user" not in part.tables
        assert f"c:h:{this_hour}:{cell}" in part.rows and f"t:h:{this_hour}:user" in part.tables
        # a late event for the evicted minute adds to what was committed, not to an empty row
        poll(agg, part, NOW - 3 * MINUTE_MS, later)
        assert part.row(old_minute).count["generation_started"] == 2
        assert part.table(f"t:m:{NOW - 3 * MINUTE_MS}:user").values["u1"][0] == 2
    finally:
        store.close()

"""Running bucket totals (streams/totals.py) against what they replace: the merge of the
bucket's committed cells. Real folding, merging and RocksDB rows; polls cut anywhere, totals
written at any poll, the parsed state dropped at any poll as after a restore."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.aggregator import Aggregator, SourcePartition
from streams.partial import Partial
from streams.settings import WorkerSettings
from streams.snapshots import SnapshotWriter
from streams.store import RowStore
from streams.totals import merge_cells

T0 = 1_767_225_600_000  # a day start; minutes 0..2 of it and one of the next hour
MINUTES = [T0, T0 + 60_000, T0 + 120_000, T0 + 3_600_000]
CELLS = [("gen", None), ("gen", "prod"), ("edit", "prod"), ("exp", "staging")]


class Rec:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.timestamp, self.key, self.value = offset, 0, None, value


def event(kind: str, minute: int, cell: tuple[str, str | None], value: float, model: int) -> dict:
    data: dict[str, Any] = {}
    if kind == "model_called":
        name, tier = [("m-a", None), ("m-a", "opus"), ("m-b", "haiku")][model]
        data = {
            "model": name,
            "tier": tier,
            "input_tokens": int(value) + 1,
            "output_tokens": 7,
            "cost_nanousd": int(value * 1000) + 3,
            "duration_ms": value,
        }
    elif kind == "first_byte":
        data = {"elapsed_ms": value}
    elif kind == "error_occurred":
        data = {"error_type": "timeout", "message": "slow"}
    elif kind == "quality_scored":
        data = {"score": int(value) % 101, "confidence": (value % 1000) / 1000}
    e = {
        "v": 1,
        "type": kind,
        "event_id": uuid.uuid4().hex,
        "timestamp": minute + int(value) % 60_000,
        "session_id": f"s{int(value) % 5}",
        "user_id": f"u{int(value) % 3}",
        "service": cell[0],
        "data": data,
    }
    if cell[1] is not None:
        e["environment"] = cell[1]
    return e


VALUE = st.floats(0.5, 50_000, allow_nan=False)
EVENTS = st.lists(
    st.builds(
        event,
        st.sampled_from(["model_called", "first_byte", "quality_scored", "error_occurred"]),
        st.sampled_from(MINUTES),
        st.sampled_from(CELLS),
        VALUE,
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=60,
)
POLL = st.tuples(st.integers(1, 20), st.booleans(), st.booleans())  # size, totals?, restore?


def run(events: list[dict], polls: list[tuple[int, bool, bool]]) -> dict[tuple[str, str], Any]:
    """Fold `events` in `polls`; after every totals write, check each written total equals
    the merge of the stored cells; return the last total written per bucket."""
    return asyncio.run(_run(events, polls))


async def _run(events: list[dict], polls: list[tuple[int, bool, bool]]) -> dict:
    s = WorkerSettings(kafka_bootstrap="127.0.0.1:1", topic_prefix="t", app_id="t")
    writer = SnapshotWriter("redis://127.0.0.1:1/0", "t")
    agg = Aggregator(s, writer)
    records = [Rec(i, orjson.dumps(e)) for i, e in enumerate(events)]
    written: dict[tuple[str, str], Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = await RowStore.open(Path(tmp) / "events-0")
        tp = TopicPartition("t.events", 0)
        part = SourcePartition(tp, "events", store, agg.rules, 1000)
        try:
            start = 0
            for size, totals, restore in [*polls, (len(records), True, False)]:
                if restore:  # the rows, tables and running totals as a restored worker has them
                    state = part.state
                    part = SourcePartition(tp, "events", store, agg.rules, 1000)
                    part.state = state
                    agg._queue_snapshot(part, dict(store.bucket_rows()), polled=False)
                out = part.state.fold_events(records[start : start + size], tp.topic, 0)
                start += size
                rows, tables = agg._merge_rows(part, out)
                for key, blob in rows.items():
                    store.put(key, blob)
                agg._queue_snapshot(part, rows, tables)
                agg._evict(part)
                if totals:
                    agg._write_totals(part)
                    for (name, _), (blob, _) in writer._dirty.items():
                        if ":snap:" in name and not name.endswith(":live"):
                            _, _, level, bucket = name.split(":")
                            got = orjson.loads(blob)
                            assert got == expected(store, level[0], bucket), (level, bucket)
                            written[(level, bucket)] = got
                    writer._dirty.clear()
            names = {"m": "minute", "h": "hour", "d": "day"}
            cells = [k.split(":") for k in store.bucket_keys() if k.startswith("c:")]
            stored = {(names[level], bucket) for _, level, bucket, *_ in cells}
            assert set(written) == stored  # every bucket's total was written
        finally:
            store.close()
    return written


def expected(store: RowStore, level: str, bucket: str) -> dict:
    cells = store.rows_between(f"c:{level}:{bucket}:", f"c:{level}:{bucket};")
    total = merge_cells(Partial.from_json(orjson.loads(blob)) for _, blob in cells)
    return orjson.loads(orjson.dumps(total.to_json()))


@settings(max_examples=60, deadline=None)
@given(EVENTS, st.lists(POLL, max_size=6))
def test_running_totals_equal_the_merge_of_the_cells(events: list[dict], polls: list) -> None:
    assert run(events, polls)


INTEGRAL = st.lists(
    st.builds(
        event,
        st.sampled_from(["model_called", "first_byte", "error_occurred"]),
        st.sampled_from(MINUTES),
        st.sampled_from(CELLS),
        st.integers(1, 50_000).map(float),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=30, deadline=None)
@given(INTEGRAL, st.lists(POLL, max_size=6), st.lists(POLL, max_size=6))
def test_with_whole_numbers_how_polls_were_cut_does_not_matter(
    events: list[dict], polls: list, other_polls: list
) -> None:
    """Sums of whole numbers are exact in any order: every written figure is the same."""
    assert run(events, polls) == run(events, other_polls)

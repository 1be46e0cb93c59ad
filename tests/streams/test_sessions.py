"""Session state backed by RocksDB folds exactly like state kept wholly in memory, and the
store waits for a RocksDB LOCK still held in this process instead of failing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams import sessions as sessions_mod
from streams.partial import Partial
from streams.partition import PartitionState, Rules
from streams.store import RowStore


class FakeRecord:
    def __init__(self, offset: int, obj: dict[str, Any]) -> None:
        self.offset, self.timestamp, self.key = offset, obj["timestamp"], None
        self.value = orjson.dumps(obj)


KINDS = ["generation_started", "generation_completed", "generation_failed", "uvp_edited",
         "uvp_approved", "generation_canceled", "generation_canceled"]  # fmt: skip


def workload(seed: int, n: int) -> list[FakeRecord]:
    rng = random.Random(seed)
    ts = 1_764_000_000_000
    out = []
    for i in range(n):
        ts += rng.randint(0, 30_000)
        kind = rng.choice(KINDS)
        data: dict[str, Any] = {}
        if kind == "generation_completed":
            data = {"duration_ms": 10.0}
        elif kind == "uvp_approved":
            data = {"edits_made": rng.choice([0, 0, 2])}
        obj = {"v": 1, "type": kind, "event_id": f"e{i}", "timestamp": ts,
               "session_id": f"s{rng.randint(0, 400)}", "user_id": "u", "service": "t",
               "data": data}  # fmt: skip
        out.append(FakeRecord(i, obj))
    return out


def apply(state: PartitionState, store: RowStore | None, batch: list[FakeRecord]) -> Any:
    out = state.fold_events(batch, "t", 0)
    changed, dropped = state.take_session_changes()
    if store is not None:  # what the aggregator does after its commit
        for sid, s in changed.items():
            store.put(f"s:{sid}", orjson.dumps(s))
        for sid in dropped:
            store.delete(f"s:{sid}")
        state.sessions.trim()
    return out


async def test_stored_sessions_fold_like_sessions_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_mod, "HOT_SESSIONS", 20)  # most reads go to RocksDB
    rules = Rules(session_idle_ms=600_000, in_flight_stale_ms=120_000)
    store = await RowStore.open(tmp_path / "events-0")
    memory, stored = PartitionState("events:0", rules), PartitionState("events:0", rules, store)
    records = workload(7, 6_000)
    for start in range(0, len(records), 97):
        batch = records[start : start + 97]
        a, b = apply(memory, None, batch), apply(stored, store, batch)
        assert {m: p.to_json() for m, p in a.minutes.items()} == {
            m: p.to_json() for m, p in b.minutes.items()
        }
        assert memory.live_view() == stored.live_view()
        assert len(stored.sessions.hot) <= 20 + 97
    assert len(memory.sessions) == len(stored.sessions) > 0
    assert memory.sessions.in_flight == stored.sessions.in_flight
    restored = PartitionState("events:0", rules, store)
    restored.sessions.load()
    assert restored.sessions.in_flight == stored.sessions.in_flight
    store.close()


def _fold(records: list[FakeRecord], cuts: list[int], rules: Rules) -> dict[int, Any]:
    """Every minute's figures after folding `records` in polls ending at `cuts`."""
    state, minutes = PartitionState("events:0", rules), {}
    for start, end in zip([0, *cuts], [*cuts, len(records)], strict=True):
        for minute, p in apply(state, None, records[start:end]).minutes.items():
            minutes.setdefault(minute, Partial()).merge(p)
    return {minute: p.to_json() for minute, p in sorted(minutes.items())}


def test_where_polls_are_cut_changes_no_figure() -> None:
    rules = Rules(session_idle_ms=600_000, in_flight_stale_ms=120_000)
    records = workload(11, 3_000)
    whole = _fold(records, [], rules)
    rng = random.Random(11)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(records)), rng.randint(1, 60)))
        assert _fold(records, cuts, rules) == whole

    # a generation that event time made stale, canceled in the next record: not "running"
    # whether or not its start and its cancel share a poll
    t = 1_764_000_000_000
    late = [
        FakeRecord(0, _event("generation_started", t, "a")),
        FakeRecord(1, _event("generation_started", t + 11 * 60_000, "b")),
        FakeRecord(2, _event("generation_canceled", t + 11 * 60_000 + 1, "a")),
    ]
    stale = Rules(in_flight_stale_ms=600_000)
    outcomes = [_fold(late, cuts, stale) for cuts in ([], [1], [2], [1, 2])]
    assert all(o == outcomes[0] for o in outcomes)
    assert sum(m["quality"]["canceled_running"] for m in outcomes[0].values()) == 0


def _event(kind: str, ts: int, sid: str) -> dict[str, Any]:
    return {"v": 1, "type": kind, "event_id": f"{sid}{ts}", "timestamp": ts, "session_id": sid,
            "service": "t", "data": {}}  # fmt: skip


async def test_open_waits_for_a_lock_held_in_this_process(tmp_path: Path) -> None:
    first = await RowStore.open(tmp_path / "p")
    first.put("m:1", b"x")
    opening = asyncio.ensure_future(RowStore.open(tmp_path / "p", wait_s=10))
    await asyncio.sleep(0.3)
    assert not opening.done()  # "No locks available": the first handle is alive
    # the holder goes away (close() would also wipe the directory): the ids column family's
    # handle and the database's
    first.ids.close()
    first.db.close()
    second = await asyncio.wait_for(opening, 10)
    assert second.row_keys() == []  # opened empty, to be refilled from the changelog
    second.close()
    with pytest.raises(Exception, match="lock"):
        third = await RowStore.open(tmp_path / "q")
        try:
            await RowStore.open(tmp_path / "q", wait_s=0.2)
        finally:
            third.close()


class FakeConsumer:
    """What the aggregator's partition loading asks of its consumer."""

    def __init__(self, assigned: set[Any]) -> None:
        self.assigned = assigned
        self.positions: dict[Any, int] = {}

    def assignment(self) -> set[Any]:
        return self.assigned

    def seek(self, tp: Any, offset: int) -> None:
        self.positions[tp] = offset

    async def committed(self, tp: Any) -> int | None:
        return None

    async def seek_to_beginning(self, tp: Any) -> None:
        self.positions[tp] = 0


async def test_a_failed_load_releases_its_store_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiokafka import TopicPartition

    from streams import aggregator as agg_mod
    from streams.settings import WorkerSettings
    from streams.snapshots import SnapshotWriter

    s = WorkerSettings(datadir=str(tmp_path), topic_prefix="t", app_id="t")  # type: ignore[call-arg]
    tps = {TopicPartition(s.topic("events"), p) for p in range(3)}
    failing = TopicPartition(s.topic("events"), 1)
    calls: list[Any] = []

    async def restore(bootstrap: str, changelog: Any, store: RowStore) -> int:
        calls.append(changelog.partition)
        await asyncio.sleep(0.05 if changelog.partition != 1 else 0)
        if changelog.partition == 1 and calls.count(1) == 1:
            raise TimeoutError("changelog fetch timed out")
        return 0

    monkeypatch.setattr(agg_mod, "restore", restore)
    agg = agg_mod.Aggregator(s, SnapshotWriter(s.redis_url, "t"))
    agg._consumer = FakeConsumer(tps)  # type: ignore[assignment]
    await agg.assign(tps)
    assert set(agg.parts) == tps - {failing}  # the others finished loading, none orphaned
    assert agg._unloaded == {failing}
    await agg._retry_loads()  # the poll loop retries; the failed load had released its LOCK
    assert set(agg.parts) == tps and not agg._unloaded
    await agg.revoke(tps)
    for p in range(3):  # every handle is closed: each directory opens again at once
        (await RowStore.open(tmp_path / f"events-{p}", wait_s=0)).close()

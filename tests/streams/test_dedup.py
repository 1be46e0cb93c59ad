"""An event is counted once: repeated event ids are dropped and counted as duplicates, in one
poll, across polls, after a restore from the changelog, and end to end across a SIGKILL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rocksdict import Options, Rdict

from api.settings import ApiSettings
from streams.dedup import block_key, digest
from streams.partition import PartitionState, Rules
from streams.settings import WorkerSettings
from streams.store import RowStore
from streams.topics import ensure_topics
from tests.api.conftest import auth
from tests.api.server import running_api
from tests.streams.helpers import WorkerProcess, encode, event, produce, wait_for

T0 = 1_764_000_000_000


class FakeRecord:
    def __init__(self, offset: int, obj: dict[str, Any]) -> None:
        self.offset, self.timestamp, self.key = offset, obj["timestamp"], None
        self.value = orjson.dumps(obj)


def _event(i: int, ts: int) -> dict[str, Any]:
    return {"v": 1, "type": "cache_hit", "event_id": f"id-{i}", "timestamp": ts,
            "session_id": "s", "user_id": None, "service": "t", "data": {}}  # fmt: skip


def _counted(state: PartitionState, ids: list[int], first_offset: int) -> tuple[int, int]:
    records = [FakeRecord(first_offset + n, _event(i, T0 + n)) for n, i in enumerate(ids)]
    out = state.fold_events(records, "t", 0)
    counted = sum(p.count.get("cache_hit", 0) for p in out.minutes.values())
    duplicates = sum(p.duplicates for p in out.minutes.values())
    return counted, duplicates


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), max_size=40), max_size=6))
def test_each_id_counts_once_over_any_polls(polls: list[list[int]]) -> None:
    state = PartitionState("events:0", Rules())
    offset, counted, dropped = 0, 0, 0
    for ids in polls:
        c, d = _counted(state, ids, offset)
        assert state.seen is not None
        state.seen.take_block()
        state.seen.committed()
        offset += len(ids)
        counted, dropped = counted + c, dropped + d
    every = [i for ids in polls for i in ids]
    assert counted == len(set(every))
    assert dropped == len(every) - len(set(every))


async def test_stored_ids_survive_a_rebuild_and_expire_after_the_horizon(tmp_path: Path) -> None:
    rules = Rules(dedup_horizon_ms=3_600_000)
    store = await RowStore.open(tmp_path / "events-0")
    state = PartitionState("events:0", rules, store, store)
    assert _counted(state, [1, 2, 3, 3], 0) == (3, 1)
    assert state.seen is not None
    key, blob = state.seen.take_block() or ("", b"")
    assert key == block_key(T0 + 3, 0)
    store.put(key, blob)  # what the aggregator does after the commit
    state.seen.committed()
    # a restarted worker: the changelog's rows only (no local id keys), then the rebuild
    fresh = await RowStore.open(tmp_path / "events-0b")
    fresh.put(key, blob)
    again = PartitionState("events:0", rules, fresh, fresh)
    assert again.seen is not None and again.seen.rebuild() == 3
    assert _counted(again, [2, 4], 4) == (1, 1)
    # past the horizon the block is tombstoned and its ids forgotten
    assert again.seen.expired_blocks(T0 + 30 * 60_000) == []
    assert again.seen.expired_blocks(T0 + 2 * 3_600_000) == [key]
    again.seen.forget_block(key)
    fresh.delete(key)
    assert again.seen.first_time("id-1", T0, 9)  # forgotten: counted as new
    store.close()
    fresh.close()


async def test_blocks_of_the_earlier_json_form_are_still_read(tmp_path: Path) -> None:
    store = await RowStore.open(tmp_path / "events-0")
    key = block_key(T0, 0)
    store.put(key, orjson.dumps(["id-1", "id-2"]))  # as stop-10 workers wrote them
    state = PartitionState("events:0", Rules(), store, store)
    assert state.seen is not None and state.seen.rebuild() == 2
    assert _counted(state, [1, 3], 5) == (1, 1)
    state.seen.forget_block(key)
    assert state.seen.first_time("id-2", T0, 9)
    store.close()


async def test_ids_live_apart_from_the_rows_and_closing_frees_the_store(tmp_path: Path) -> None:
    store = await RowStore.open(tmp_path / "events-0")
    store.put("m:1", b"{}")
    ids = [digest(f"id-{i}") for i in range(50)]
    store.put_ids(sorted(ids))
    known = store.id_lookup()
    assert all(known(one) is not None for one in ids)
    assert known(digest("id-50")) is None
    assert store.row_keys() == ["m:1"]  # the id column family is not among the rows
    store.delete_ids(ids[:10])
    assert [known(one) is None for one in ids[:11]] == [True] * 10 + [False]
    store.close()
    # nothing of the closed store (a column family handle) may hold RocksDB's LOCK: the same
    # partition, given back at once, opens without waiting
    again = await RowStore.open(tmp_path / "events-0", wait_s=0.2)
    assert again.id_lookup()(ids[20]) is None  # wiped at open, refilled from the changelog
    again.close()


async def test_a_store_left_by_the_earlier_layout_opens(tmp_path: Path) -> None:
    # workers up to this change kept ids as `z:<digest>` rows and had no ids column family;
    # a worker upgraded in place finds such a directory (wiped at open, as always)
    old = Rdict(str(tmp_path / "events-0"), Options(raw_mode=True))
    old[b"z:" + digest("id-1")] = b""
    old.close()
    store = await RowStore.open(tmp_path / "events-0", wait_s=0.2)
    assert store.id_lookup()(digest("id-1")) is None and store.row_keys() == []
    store.close()


@pytest.fixture
def api_settings(worker_settings: WorkerSettings) -> ApiSettings:
    from tests.api.conftest import ADMIN_TOKEN, INGEST_KEY, READ_TOKEN

    return ApiSettings(
        kafka_bootstrap=worker_settings.kafka_bootstrap,
        redis_url=worker_settings.redis_url,
        topic_prefix=worker_settings.topic_prefix,
        api_read_tokens=[READ_TOKEN],
        api_admin_tokens=[ADMIN_TOKEN],
        api_ingest_keys=[INGEST_KEY],
        api_kafka_timeout_s=10,
    )


@pytest.mark.integration
async def test_resends_count_once_through_the_api_kafka_and_a_sigkill(
    worker_settings: WorkerSettings,
    api_settings: ApiSettings,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    s = worker_settings
    await ensure_topics(s)
    now = int(time.time() * 1000)
    events = [event("cache_hit", now - 60_000 + i, f"sess-{i % 7}") for i in range(30)]
    junk = [{"type": "no_such_type", "session_id": "x"}, {"type": "cache_hit"}]
    worker = WorkerProcess(s, tmp_path, "w0").start()
    workers.append(worker)
    window = {"from": now - 3_600_000, "to": now + 3_600_000}

    with running_api(api_settings) as base:
        async with httpx.AsyncClient(base_url=base, headers=auth("ingest")) as http:

            async def post(batch: list[Any]) -> dict[str, Any]:
                response = await http.post("/v1/collect", json=batch)
                assert response.status_code == 202, response.text
                body: dict[str, Any] = response.json()
                return body

            async def figures() -> tuple[int, int, int]:
                got = []
                for group in ("summary", "health"):
                    r = await http.get(f"/v1/metrics/{group}", params=window, headers=auth("read"))
                    assert r.status_code == 200, r.text
                    got.append(r.json())
                return got[0]["events"], got[1]["duplicates"], got[1]["dead_letters"]

            async def shows(want: tuple[int, int, int]) -> bool:
                return await figures() == want

            # the same event twice in one batch, then ten again in a second request
            assert (await post([*events[:20], events[0], *junk]))["rejected"] == 2
            assert (await post(events[10:30]))["accepted"] == 20
            # the same records again on Kafka, as a producer's resend after a lost ack
            await produce(s.kafka_bootstrap, s.topic("events"), encode(events[25:]))
            # a record the worker itself dead-letters
            await produce(s.kafka_bootstrap, s.topic("events"), [(b"k", b"not json")])
            await wait_for(lambda: shows((30, 1 + 10 + 5, 3)), 60, "first figures", [worker])

            worker.kill()  # mid-way: the ids must come back from the changelog
            await produce(s.kafka_bootstrap, s.topic("events"), encode(events))
            worker.start()
            await wait_for(lambda: shows((30, 16 + 30, 3)), 90, "after the restart", [worker])

"""Ground truth: >=100,000 events (plus 10,000 malformed records) through real workers; every
aggregate the reader returns equals the oracle's figures computed from the records in Kafka."""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest

from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.streams.checks import assert_matches
from tests.streams.helpers import WorkerProcess, produce, read_topic, wait_for
from tests.streams.workload import Oracle, dlq_reasons, malformed, workload

pytestmark = pytest.mark.integration

GOOD_EVENTS = 100_000
BAD_RECORDS = 10_000


async def _feed(settings: WorkerSettings, seed: int, bad: int) -> tuple[int, int]:
    now = int(time.time() * 1000)
    start = now - 20 * 60_000
    events = workload(seed, GOOD_EVENTS, start, 15 * 60_000)
    records: list[tuple[bytes | None, bytes]] = [
        (e["session_id"].encode(), orjson.dumps(e)) for e in events
    ]
    rng = random.Random(seed)
    for raw in malformed(seed, bad, now):
        records.insert(rng.randrange(len(records) + 1), (b"bad-%d" % rng.randrange(50), raw))
    await produce(settings.kafka_bootstrap, settings.topic("events"), records)
    return start - 60 * 60_000, now + 60 * 60_000


async def _oracle(settings: WorkerSettings) -> Oracle:
    oracle = Oracle()
    for record in await read_topic(settings.kafka_bootstrap, settings.topic("events")):
        oracle.feed(record.value)
    return oracle


async def _drained(
    reader: MetricsReader, oracle: Oracle, start: int, end: int
) -> bool | tuple[str, ...]:
    """True once everything is counted; else what is counted so far (wait_for shows it)."""
    summary = await reader.summary(start, end)
    health = await reader.health(start, end)
    events, dead = summary["events"], health["dead_letters"]
    if events == sum(oracle.count.values()) and dead == oracle.dead:
        return True
    return (f"events {events} of {sum(oracle.count.values())}", f"dead {dead} of {oracle.dead}")


@pytest.mark.parametrize("n_workers", [1, 3])
async def test_reader_matches_plain_python_over_100k_events(
    n_workers: int,
    worker_settings: WorkerSettings,
    reader: MetricsReader,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    await ensure_topics(worker_settings)
    for i in range(n_workers):
        workers.append(WorkerProcess(worker_settings, tmp_path, f"w{i}").start())
    bad = BAD_RECORDS if n_workers == 1 else 500
    start, end = await _feed(worker_settings, seed=7 + n_workers, bad=bad)
    oracle = await _oracle(worker_settings)
    assert sum(oracle.count.values()) >= GOOD_EVENTS
    assert oracle.dead == bad

    await wait_for(
        lambda: _drained(reader, oracle, start, end), 240, "all records aggregated", workers
    )
    await assert_matches(reader, oracle, start, end)

    letters = await read_topic(worker_settings.kafka_bootstrap, worker_settings.topic("dlq"))
    assert len(letters) == bad
    reasons = dlq_reasons(letters)
    assert set(reasons) >= {"not_json", "unknown_type", "missing_field", "invalid_field"}
    assert {"timestamp_unit", "absurd_value", "too_large"} <= set(reasons) or n_workers == 3
    first = orjson.loads(letters[0].value)
    assert first["source_topic"] == worker_settings.topic("events")
    assert isinstance(first["offset"], int) and first["message"]
    assert all(w.alive() for w in workers)

"""Ground truth with the product's own demo traffic: >= 100,000 events reported through the
SDK (events and metric batches), then every aggregate compared with figures computed in plain
Python from the event records read back from Kafka and, for durations (sent as metric
series), from the seeded demo workload's own measured values."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from genpulse.demo.driver import drive
from genpulse.demo.workload import Measure, Workload
from producers import GenPulse
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.streams.checks import assert_matches
from tests.streams.helpers import WorkerProcess, read_topic, wait_for
from tests.streams.workload import Oracle

pytestmark = pytest.mark.integration
SEED = 20261126


def measured(sessions: int) -> dict[str, list[float]]:
    """The demo's measurements per series name, regenerated from its seed."""
    out: dict[str, list[float]] = defaultdict(list)
    for action in Workload(SEED).actions(sessions):
        if isinstance(action, Measure):
            tags = action.tags or {}
            name = f"{action.name}:{tags['phase']}" if "phase" in tags else action.name
            out[name].append(action.value_ms)
    return out


@pytest.mark.parametrize("n_workers", [1, 3])
async def test_demo_traffic_aggregates_match_plain_python(
    n_workers: int,
    worker_settings: WorkerSettings,
    reader: MetricsReader,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    s = worker_settings
    await ensure_topics(s)
    for i in range(n_workers):
        workers.append(WorkerProcess(s, tmp_path, f"w{i}").start())
    began = int(time.time() * 1000)
    pulse = GenPulse(
        service="demo", bootstrap_servers=s.kafka_bootstrap, topic_prefix=s.topic_prefix
    )
    try:
        result = drive(pulse, seed=SEED, sessions=6_000)
    finally:
        pulse.close()
    assert result.events >= 100_000
    oracle = Oracle()
    for record in await read_topic(s.kafka_bootstrap, s.topic("events")):
        oracle.feed(record.value)
    assert sum(oracle.count.values()) == result.events and oracle.dead == 0
    batches = len(await read_topic(s.kafka_bootstrap, s.topic("metrics")))
    start, end = began - 3_600_000, int(time.time() * 1000) + 3_600_000

    async def drained() -> bool | tuple[int, int]:
        got = (await reader.summary(start, end))["events"]
        want = result.events + batches
        return got == want or (got, want)

    await wait_for(drained, 240, "all events and metric batches aggregated", workers)
    series = measured(result.sessions)
    assert sum(len(v) for v in series.values()) == result.measures
    await assert_matches(reader, oracle, start, end, series=series, metric_batches=batches)

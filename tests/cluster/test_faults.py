"""Faults on a real 3-broker cluster under a steady SDK load (2,000 events/s for 60 s, two
worker processes): kill -9 one broker for 30 s, kill -9 the busiest partition leader, kill a
worker and a broker together, lose a broker's data disk. With replication 3 / min ISR 2 the
figures afterwards equal an oracle computed from what the SDK acknowledged; with replication 1
the disk loss loses counted events, which shows these tests can fail.

Run: bash deploy/test.sh -m cluster tests/cluster   (or GENPULSE_CLUSTER_TESTS=1)
Each scenario prints one JSON line with its figures (events/s, seconds stale).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from genpulse.devservices import KafkaCluster
from producers.budget import budget_control_record
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.cluster.load import SdkLoad, Staleness
from tests.streams.checks import WorkloadBreaker, assert_matches
from tests.streams.helpers import WorkerProcess, produce, read_topic, wait_for
from tests.streams.workload import Oracle, workload

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.timeout(600)]

RATE = 2_200  # events/s: 10 % over the 2,000, so a slow second still averages above it
SECONDS = 60
FAULT_AT_S = 10.0
DOWN_S = 30.0
DEAD_LETTERS = 300
BREAKERS = ("circuit_breaker_opened", "circuit_breaker_closed", "circuit_breaker_opened")


def _events(seed: int) -> tuple[list[dict], int]:
    """The SDK's load: a seeded workload and 3 breaker events; and its cost."""
    events = workload(seed, RATE * SECONDS, 0, 1)[: RATE * SECONDS]
    for i, kind in enumerate(BREAKERS):
        events.insert(len(events) * (i + 1) // 4, _plain(kind, "breaker-session", name="anthropic"))
    cost = sum(
        e["data"].get("cost_nanousd", 0)
        for e in events
        if e["type"] == "model_called" and e["data"].get("priced", True)
    )
    return events, cost


def _plain(kind: str, session: str, **data: object) -> dict:
    return {"type": kind, "session_id": session, "user_id": None, "data": data}


def _dead_letters(now: int) -> list[dict]:
    """Records only the worker rejects (a phase of 9e9 ms), from a writer without the SDK's
    own check (which would refuse to send them), as an older client or a script would."""
    return [
        {
            **_plain("phase_completed", f"dl-{i}", phase="analysis", duration_ms=9e9),
            "v": 1,
            "event_id": f"dl{i}",
            "timestamp": now,
            "service": "s",
        }
        for i in range(DEAD_LETTERS)
    ]


@dataclass
class Run:
    """What one scenario saw: the SDK's stats, the oracle, the figures, the stale seconds."""

    settings: WorkerSettings
    cluster: KafkaCluster
    workers: list[WorkerProcess]
    began: float = 0.0

    async def at(self, seconds: float) -> None:
        """Sleep until `seconds` after the load began."""
        await asyncio.sleep(max(0.0, self.began + seconds - time.monotonic()))


Fault = Callable[[Run], Awaitable[str]]


async def _scenario(
    s: WorkerSettings,
    reader: MetricsReader,
    cluster: KafkaCluster,
    workers: list[WorkerProcess],
    tmp: Path,
    fault: Fault,
    replication: int = 3,
    seed: int = 7,
) -> dict:
    s = s.model_copy(update={"topic_replication": replication,
                             "topic_min_insync": min(2, replication)})  # fmt: skip
    await ensure_topics(s)  # what `genpulse topics create` does
    events, cost = _events(seed)
    now = int(time.time() * 1000)
    budget_usd = (Decimal(cost) / Decimal(1_000_000_000) / Decimal("1.02")).quantize(
        Decimal("0.000000001")
    )
    rule = {"v": 1, "kind": "alert_rule", "id": "breakers", "type": "circuit_breaker",
            "severity": "critical", "enabled": True, "updated_ms": now}  # fmt: skip
    await produce(s.kafka_bootstrap, s.topic("control"), [
        budget_control_record("global", budget_usd, [0.5, 0.8, 0.9, 1.0], now),
        (b"rule:breakers", orjson.dumps(rule))])  # fmt: skip
    for name in ("w0", "w1"):
        workers.append(WorkerProcess(s, tmp, name, **_topology_env(s)).start())
    start, end = now - 3_600_000, now + 3_600_000
    oracle = Oracle()
    for i, e in enumerate(events):  # the SDK must acknowledge all of them: checked below
        stamped = {**e, "v": 1, "event_id": f"e{i}", "timestamp": now, "service": "s"}
        oracle.feed(orjson.dumps(stamped))
    letters = _dead_letters(now)
    for letter in letters:
        oracle.feed(orjson.dumps(letter))
    expected = sum(oracle.count.values())
    staleness = Staleness(s.redis_url, s.key_prefix, start, end).start()
    load = SdkLoad(s.kafka_bootstrap, s.topic_prefix, events, RATE).start()
    await produce(s.kafka_bootstrap, s.topic("events"),
                  [(e["session_id"].encode(), orjson.dumps(e)) for e in letters])  # fmt: skip
    run = Run(s, cluster, workers, load.began)
    what = await fault(run)
    _note(run, f"fault done: {what}; SDK {load.client.stats().as_dict()}")
    stats = await asyncio.to_thread(load.finish, 120 if replication > 1 else 30)
    _note(run, f"load done: {stats.as_dict()}")

    async def counted() -> bool | tuple[int, int]:
        seen = (await asyncio.wait_for(reader.summary(start, end), 10))["events"]
        _note(run, f"counted {seen} of {expected}")
        return seen == expected or (seen, expected)

    figures = {
        "fault": what,
        "replication": replication,
        "events_tracked": len(events),
        "sdk_acknowledged": stats.sent,
        "sdk_dropped": stats.dropped,
        "sdk_failed": stats.failed,
        "sdk_resent": stats.resent,
        "events_per_s": round(stats.sent / load.seconds),
    }
    if replication == 1:  # the data is gone: give it time, then show how much
        await asyncio.sleep(45)
        seen = (await reader.summary(start, end))["events"]
        await staleness.stop()
        figures |= {"expected": expected, "counted": seen, "lost": expected - seen}
        print(json.dumps(figures))
        return figures
    await wait_for(counted, 240, "every acknowledged event counted", workers)
    drained_at = time.monotonic()
    _note(run, "drained")
    await staleness.stop()
    _note(run, "sampler stopped")
    assert (stats.dropped, stats.failed, stats.sent) == (0, 0, len(events)), stats
    assert not stats.invalid, stats
    records = await read_topic(s.kafka_bootstrap, s.topic("events"))
    assert len(records) == len(events) + DEAD_LETTERS  # in Kafka exactly once each
    assert len({orjson.loads(r.value)["event_id"] for r in records}) == len(records)
    acknowledged = Oracle()  # the same events with the timestamps the SDK stamped on them
    for record in records:
        acknowledged.feed(record.value)
    await assert_matches(reader, acknowledged, start, end)
    assert (await reader.costs(start, end))["total_cost_nanousd"] == cost == oracle.total_cost

    dead = await read_topic(s.kafka_bootstrap, s.topic("dlq"))
    assert len(dead) == oracle.dead == DEAD_LETTERS
    health = await reader.health(start, end)
    assert health["dead_letters"] == DEAD_LETTERS, health

    sent = [orjson.loads(r.value) for r in records]
    breakers = sorted(
        e["timestamp"]
        for e in sent
        if e["type"].startswith("circuit_breaker") and e["data"].get("name") == "anthropic"
    )
    sonnet = WorkloadBreaker(sent)
    day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    want = sorted(
        [(f"budget:global:{day}:{t}", "fired") for t in ("0.5", "0.8", "0.9", "1")]
        + [(f"budget:global:{day}:forecast", "fired")]  # over 100 %: projected over, once
        + [(f"rule:breakers:breaker:anthropic:{breakers[0]}", "fired"),
           (f"rule:breakers:breaker:anthropic:{breakers[0]}", "resolved"),
           (f"rule:breakers:breaker:anthropic:{breakers[2]}", "fired")]
    )  # fmt: skip

    async def alerts() -> list[tuple[str, str]] | None:
        got = sorted((a["id"], a["status"]) for a in await reader.alerts(limit=1000))
        return got if len(got) >= len(want) + sonnet.alerts else None

    assert sonnet.split(await wait_for(alerts, 60, "alerts", workers)) == want
    in_topic = await read_topic(s.kafka_bootstrap, s.topic("alerts"))
    pairs = [(a["id"], a["status"]) for a in map(orjson.loads, (r.value for r in in_topic))]
    assert sonnet.split(sorted(pairs)) == want
    figures |= {
        "stale_s": round(staleness.stale_seconds(load.began, drained_at), 1),
        "drained_after_load_s": round(drained_at - load.ended, 1),
    }
    print(json.dumps(figures))
    return figures


def _topology_env(s: WorkerSettings) -> dict[str, str]:
    return {
        "GENPULSE_TOPIC_REPLICATION": str(s.topic_replication),
        "GENPULSE_TOPIC_MIN_INSYNC": str(s.topic_min_insync),
        "GENPULSE_BATCH_MAX_RECORDS": "2000",
    }


def _note(run: Run, what: str) -> None:
    """Progress on stdout (pytest -s shows it): where a slow scenario spends its time."""
    print(f"[{time.monotonic() - run.began:6.1f} s] {what}", flush=True)


def _main_topics(s: WorkerSettings) -> list[str]:
    return [s.topic("events"), s.internal_topic("events-changelog")]


async def _kill_one_for_30s(run: Run) -> str:
    await run.at(FAULT_AT_S)
    victim = run.cluster.nodes[-1].node_id
    run.cluster.kill(victim)
    await run.at(FAULT_AT_S + DOWN_S)
    await asyncio.to_thread(run.cluster.restart, victim)
    return f"kill -9 broker {victim} for {DOWN_S:.0f} s"


async def _kill_busiest_leader(run: Run) -> str:
    await run.at(FAULT_AT_S)
    victim = run.cluster.busiest_leader(_main_topics(run.settings))
    run.cluster.kill(victim)
    await run.at(FAULT_AT_S + DOWN_S)
    await asyncio.to_thread(run.cluster.restart, victim)
    return f"kill -9 broker {victim}, the busiest leader"


async def _kill_worker_and_broker(run: Run) -> str:
    await run.at(FAULT_AT_S)
    victim = run.cluster.busiest_leader(_main_topics(run.settings))
    run.workers[0].kill()
    run.cluster.kill(victim)
    await run.at(FAULT_AT_S + DOWN_S)
    run.workers[0].start()
    await asyncio.to_thread(run.cluster.restart, victim)
    return f"kill -9 worker w0 and broker {victim}"


async def _lose_a_disk(run: Run) -> str:
    await run.at(FAULT_AT_S)
    victim = run.cluster.busiest_leader(_main_topics(run.settings))
    run.cluster.kill(victim)
    run.cluster.lose_data(victim)
    await run.at(FAULT_AT_S + DOWN_S)
    await asyncio.to_thread(run.cluster.restart, victim)
    return f"kill -9 broker {victim} and lose its data disk"


@pytest.mark.parametrize(
    "fault",
    [_kill_one_for_30s, _kill_busiest_leader, _kill_worker_and_broker, _lose_a_disk],
    ids=["kill-one-30s", "kill-busiest-leader", "kill-worker-and-broker", "lose-a-disk"],
)
async def test_replication_3_loses_nothing(
    cluster_settings: WorkerSettings,
    cluster_reader: MetricsReader,
    healed: KafkaCluster,
    cluster_workers: list[WorkerProcess],
    tmp_path: Path,
    fault: Fault,
) -> None:
    figures = await _scenario(
        cluster_settings, cluster_reader, healed, cluster_workers, tmp_path, fault
    )
    assert figures["sdk_acknowledged"] == figures["events_tracked"]


async def test_replication_1_loses_data_when_a_disk_is_lost(
    cluster_settings: WorkerSettings,
    cluster_reader: MetricsReader,
    healed: KafkaCluster,
    cluster_workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    figures = await _scenario(
        cluster_settings, cluster_reader, healed, cluster_workers, tmp_path, _lose_a_disk, 1
    )
    assert figures["lost"] > 0, figures

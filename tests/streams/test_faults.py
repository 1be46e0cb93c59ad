"""Faults: SIGKILL the worker three times mid-stream, restarting it each time. Final counts,
money (to the nano-dollar), dead letters and the alert list equal the fault-free expectation:
no record lost, none counted twice, no alert missing or repeated."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from producers.budget import budget_control_record
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.streams.checks import WorkloadBreaker, assert_matches
from tests.streams.helpers import (
    WorkerProcess,
    clear_of_midnight,
    event,
    produce,
    read_topic,
    wait_for,
)
from tests.streams.workload import Oracle, malformed, workload

pytestmark = pytest.mark.integration


def _records(now: int) -> tuple[list[tuple[bytes | None, bytes]], int, list[int]]:
    events = workload(99, 40_000, now - 10 * 60_000, 8 * 60_000)
    breaker = [now - 5 * 60_000, now - 4 * 60_000, now - 3 * 60_000]
    kinds = ["circuit_breaker_opened", "circuit_breaker_closed", "circuit_breaker_opened"]
    at = len(events) // 4
    for i, (kind, ts) in enumerate(zip(kinds, breaker, strict=True)):
        events.insert(at * (i + 1), event(kind, ts, "breaker-session", None, name="anthropic"))
    records: list[tuple[bytes | None, bytes]] = [
        (e["session_id"].encode(), orjson.dumps(e)) for e in events
    ]
    for i, raw in enumerate(malformed(5, 1_000, now)):
        records.insert(i * 40, (b"junk", raw))
    cost = sum(
        e["data"].get("cost_nanousd", 0)
        for e in events
        if e["type"] == "model_called" and e["data"].get("priced", True)
    )
    return records, cost, breaker


async def _produce_slowly(settings: WorkerSettings, records: list, seconds: float) -> None:
    chunks = 40
    size = -(-len(records) // chunks)
    for i in range(chunks):
        await produce(
            settings.kafka_bootstrap, settings.topic("events"), records[i * size : (i + 1) * size]
        )
        await asyncio.sleep(seconds / chunks)


async def test_three_sigkills_mid_stream_change_nothing(
    worker_settings: WorkerSettings,
    reader: MetricsReader,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    s = worker_settings
    await ensure_topics(s)
    now = clear_of_midnight(int(time.time() * 1000), 10 * 60_000)  # one day's budget
    records, cost, breaker = _records(now)
    budget_usd = (Decimal(cost) / Decimal(1_000_000_000) / Decimal("1.02")).quantize(
        Decimal("0.000000001")
    )
    rule = {"v": 1, "kind": "alert_rule", "id": "breakers", "type": "circuit_breaker",
            "severity": "critical", "enabled": True, "updated_ms": now}  # fmt: skip
    await produce(
        s.kafka_bootstrap,
        s.topic("control"),
        [budget_control_record("global", budget_usd, [0.5, 0.8, 0.9, 1.0], now),
         (b"rule:breakers", orjson.dumps(rule))],
    )  # fmt: skip
    worker = WorkerProcess(s, tmp_path, "w0", GENPULSE_BATCH_MAX_RECORDS="2000").start()
    workers.append(worker)
    feeding = asyncio.ensure_future(_produce_slowly(s, records, 60.0))
    seen_at_kill = [0]

    async def progressed() -> int | None:
        seen = (await reader.summary(now - 7_200_000, now + 3_600_000))["events"]
        return seen if seen > seen_at_kill[-1] else None

    for _ in range(3):  # kill as soon as the (restarted) worker has made progress
        seen_at_kill.append(await wait_for(progressed, 90, "progress", [worker]))
        worker.kill()
        worker.start()
    await feeding
    seen_at_kill.pop(0)
    good = len(records) - 1_000
    assert sum(0 < seen < good for seen in seen_at_kill) >= 2, seen_at_kill  # mid-stream kills

    oracle = Oracle()
    for record in await read_topic(s.kafka_bootstrap, s.topic("events")):
        oracle.feed(record.value)
    assert oracle.total_cost == cost and oracle.dead == 1_000
    start, end = now - 2 * 3_600_000, now + 3_600_000

    async def drained() -> bool | tuple[int, int]:
        summary = await reader.summary(start, end)
        expected = sum(oracle.count.values())
        return summary["events"] == expected or (summary["events"], expected)

    await wait_for(drained, 180, "every event aggregated", [worker])
    await assert_matches(reader, oracle, start, end)
    costs = await reader.costs(start, end)
    assert costs["total_cost_nanousd"] == cost

    letters = await read_topic(s.kafka_bootstrap, s.topic("dlq"))
    assert len(letters) == 1_000
    assert (
        len(
            {(orjson.loads(r.value)["partition"], orjson.loads(r.value)["offset"]) for r in letters}
        )
        == 1_000
    )

    day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    expected = sorted(
        [(f"budget:global:{day}:{t}", "fired") for t in ("0.5", "0.8", "0.9", "1")]
        + [(f"budget:global:{day}:forecast", "fired")]  # over 100 %: projected over, once
        + [
            (f"rule:breakers:breaker:anthropic:{breaker[0]}", "fired"),
            (f"rule:breakers:breaker:anthropic:{breaker[0]}", "resolved"),
            (f"rule:breakers:breaker:anthropic:{breaker[2]}", "fired"),
        ]
    )

    sonnet = WorkloadBreaker(orjson.loads(v) for k, v in records if k != b"junk")

    async def all_alerts() -> list[tuple[str, str]] | None:
        got = [
            orjson.loads(r.value) for r in await read_topic(s.kafka_bootstrap, s.topic("alerts"))
        ]
        pairs = sorted((a["id"], a["status"]) for a in got)
        return pairs if len(pairs) >= len(expected) + sonnet.alerts else None

    assert sonnet.split(await wait_for(all_alerts, 60, "alerts", [worker])) == expected
    stored = sorted((a["id"], a["status"]) for a in await reader.alerts(limit=1000))
    assert sonnet.split(stored) == expected

"""Budgets end to end: control record in, exactly one alert per threshold per scope and period
(even with the worker SIGKILLed between crossings), budget-state read by the SDK's
budget.allows(), and the next day starting from zero."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from producers import GenPulse
from producers.budget import budget_control_record
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.streams.helpers import WorkerProcess, encode, event, produce, read_topic, wait_for

pytestmark = pytest.mark.integration

USD = 1_000_000_000


def call(ts: int, user: str, nanos: int) -> dict[str, object]:
    return event(
        "model_called", ts, f"s-{user}-{ts}", user, model="claude-sonnet", tier="sonnet",
        input_tokens=10, output_tokens=10, cost_nanousd=nanos,
    )  # fmt: skip


async def _spend_seen(pulse: GenPulse, nanos: int) -> bool:
    status = pulse.budget.status("global")
    return status is not None and status.spend_nanousd == nanos


async def test_thresholds_fire_once_each_across_kills_and_sdk_stops_at_100(
    worker_settings: WorkerSettings, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    s = worker_settings
    await ensure_topics(s)
    now = int(time.time() * 1000)
    control = [
        budget_control_record("global", "10", [0.5, 0.8, 0.9, 1.0], now),
        budget_control_record("user:alice", "1", [0.5, 0.8, 0.9, 1.0], now),
    ]
    await produce(s.kafka_bootstrap, s.topic("control"), control)
    # events of "tomorrow" stand for the next day: let them through the future-skew check
    worker = WorkerProcess(s, tmp_path, "w0", GENPULSE_MAX_FUTURE_SKEW_S="172800").start()
    workers.append(worker)
    pulse = GenPulse(
        service="budget-test", bootstrap_servers=s.kafka_bootstrap, topic_prefix=s.topic_prefix
    )
    try:

        async def alerts() -> list[dict[str, object]]:
            records = await read_topic(s.kafka_bootstrap, s.topic("alerts"), idle_ms=500)
            found = [orjson.loads(r.value) for r in records]
            return [a for a in found if a["rule"] == "budget"]  # not the forecast alerts

        async def alert_count(n: int) -> bool:
            return len(await alerts()) >= n

        # 55 % of global (bob), then kill; 85 %, kill; 92 %, kill; then 101 %.
        steps = [(5_500_000_000, 1), (3_000_000_000, 2), (700_000_000, 3)]
        for nanos, expected in steps:
            await produce(s.kafka_bootstrap, s.topic("events"), encode([call(now, "bob", nanos)]))
            await wait_for(lambda n=expected: alert_count(n), 60, f"{expected} alerts", [worker])
            worker.kill()
            worker.start()
        # a warm worker (restart finished): the SDK sees this spend before the crossing
        await produce(s.kafka_bootstrap, s.topic("events"), encode([call(now, "bob", 1)]))
        await wait_for(lambda: _spend_seen(pulse, 9_200_000_001), 60, "warm worker", [worker])
        assert pulse.budget.allows("global")
        await produce(s.kafka_bootstrap, s.topic("events"), encode([call(now, "bob", 900_000_000)]))
        crossed_at = time.monotonic()
        while pulse.budget.allows("global") and time.monotonic() - crossed_at < 30:
            time.sleep(0.02)
        stopped_after = time.monotonic() - crossed_at
        assert not pulse.budget.allows("global")
        assert stopped_after <= 2.0, f"budget.allows() turned False after {stopped_after:.2f}s"
        assert not pulse.budget.allows("user:carol")  # global stops every scope

        # alice crosses all four of her thresholds in one call.
        await produce(s.kafka_bootstrap, s.topic("events"), encode([call(now, "alice", 2 * USD)]))
        await wait_for(lambda: alert_count(8), 60, "8 alerts", [worker])
        got = await alerts()
        today = datetime.fromtimestamp(now / 1000, UTC).date().isoformat()
        assert sorted((a["scope"], a["severity"], a["id"]) for a in got) == sorted(
            (scope, sev, f"budget:{scope}:{today}:{t}")
            for scope in ("global", "user:alice")
            for sev, t in (("warning", "0.5"), ("alert", "0.8"), ("critical", "0.9"), ("stop", "1"))
        )
        assert all(a["status"] == "fired" and a["window"] == today for a in got)

        # the next day starts again from zero
        tomorrow_ms = now + 86_400_000
        tomorrow = (datetime.fromtimestamp(now / 1000, UTC) + timedelta(days=1)).date().isoformat()
        await produce(s.kafka_bootstrap, s.topic("events"), encode([call(tomorrow_ms, "bob", USD)]))

        async def reset() -> dict[str, object] | None:
            records = await read_topic(s.kafka_bootstrap, s.topic("budget-state"), idle_ms=500)
            states = [orjson.loads(r.value) for r in records if r.key == b"global"]
            return states[-1] if states and states[-1]["period"] == tomorrow else None

        state = await wait_for(reset, 60, "tomorrow's budget-state", [worker])
        assert state["state"] == "ok" and state["spend_nanousd"] == USD
        assert len(await alerts()) == 8  # no alert fired twice, none for the new day yet
        assert worker.alive()
    finally:
        pulse.close()


async def test_a_past_days_spend_is_forgotten_and_tombstoned(
    worker_settings: WorkerSettings, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    """The controller keeps each scope's spend of the clock's day only (what a day budget
    made now starts from): when the day turns, the earlier day's rows are tombstoned in its
    changelog, and a killed worker's successor does not bring them back."""
    s = worker_settings
    await ensure_topics(s)
    now = int(time.time() * 1000)
    tomorrow = now + 86_400_000
    worker = WorkerProcess(s, tmp_path, "w0", GENPULSE_MAX_FUTURE_SKEW_S="172800").start()
    workers.append(worker)
    changelog = s.internal_topic("controller-changelog")

    async def latest() -> dict[str, object]:
        rows: dict[str, object] = {}
        for r in await read_topic(s.kafka_bootstrap, changelog, idle_ms=500):
            key = r.key.decode()
            if key.startswith("spend:"):
                rows[key[6:]] = None if r.value is None else orjson.loads(r.value)
        return rows

    async def has(scope: str, day: str) -> bool:
        row = (await latest()).get(scope)
        return isinstance(row, dict) and row["period"] == day

    today = datetime.fromtimestamp(now / 1000, UTC).date().isoformat()
    next_day = datetime.fromtimestamp(tomorrow / 1000, UTC).date().isoformat()
    await produce(s.kafka_bootstrap, s.topic("events"), encode([call(now, "xavier", 5)]))
    await wait_for(lambda: has("user:xavier", today), 60, "today's spend row", [worker])
    await produce(s.kafka_bootstrap, s.topic("events"), encode([call(tomorrow, "yann", 7)]))
    await wait_for(lambda: has("user:yann", next_day), 60, "the next day's spend row", [worker])
    rows = await latest()
    assert "user:xavier" in rows and rows["user:xavier"] is None  # tombstoned
    assert rows["global"] == {"period": next_day, "spend_nanousd": 7}
    worker.kill()
    worker.start()
    # a call of the day before the clock's is not kept: xavier's row stays a tombstone
    await produce(
        s.kafka_bootstrap,
        s.topic("events"),
        encode([call(now, "xavier", 11), call(tomorrow, "zoe", 13)]),
    )
    await wait_for(lambda: has("user:zoe", next_day), 60, "the restarted worker's row", [worker])
    rows = await latest()
    assert rows["user:xavier"] is None
    assert rows["global"] == {"period": next_day, "spend_nanousd": 20}

"""Budgets by scope and period against a real worker, Kafka and Redis, SIGKILLed between
steps: each scope counts its calls in its own period and time zone (a call of the previous
month is left out of the month budget), thresholds fire once, the forecast alert of a
rolling window fires once and resolves once, and a new day starts clean."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from producers.budget import budget_control_record
from streams.budget_periods import MINUTE_MS, Period, period_of
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.streams.helpers import (
    WorkerProcess,
    clear_of_midnight,
    encode,
    event,
    produce,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.integration

USD = 1_000_000_000
GROWTH = {"team": "growth", "feature": "uvp"}


def call(ts: int, nanos: int, service: str = "gen-svc", **dims: Any) -> dict[str, Any]:
    e = event(
        "model_called", ts, f"s-{ts}-{nanos}", "u1", model="claude-x", tier="sonnet",
        input_tokens=10, output_tokens=10, cost_nanousd=nanos,
    )  # fmt: skip
    return {**e, "service": service, **dims}


async def test_scopes_periods_forecast_across_kills(
    worker_settings: WorkerSettings, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    s = worker_settings
    await ensure_topics(s)
    now = clear_of_midnight(int(time.time() * 1000), 30 * MINUTE_MS)  # the model's day budget
    now -= now % MINUTE_MS
    budgets = [
        budget_control_record("tag:team=growth", "100", (0.5, 0.8, 0.9, 1.0), now, "month",
                              "America/New_York"),
        budget_control_record("environment:prod", "50", (0.5, 1.0), now, "week", "Europe/Berlin"),
        budget_control_record("model:claude-x", "1", (0.5, 0.8, 0.9, 1.0), now),
        budget_control_record("service:gen-svc", "5", (0.05, 1.0), now, "rolling", None, 24),
    ]  # fmt: skip
    await produce(s.kafka_bootstrap, s.topic("control"), budgets)
    worker = WorkerProcess(s, tmp_path, "w0", GENPULSE_MAX_FUTURE_SKEW_S="172800").start()
    workers.append(worker)

    month = Period("month", "America/New_York")
    last_month = period_of(month, now)[1] - MINUTE_MS
    calls = [
        call(now - 30 * MINUTE_MS, USD // 4, environment="prod", tags=GROWTH),
        call(last_month, 7 * USD, environment="prod", tags=GROWTH),  # the month before
    ]
    await produce(s.kafka_bootstrap, s.topic("events"), encode(calls))

    def expected(period: Period) -> int:
        current = period_of(period, now)[0]
        return sum(c["data"]["cost_nanousd"] for c in calls
                   if period_of(period, c["timestamp"])[0] == current)  # fmt: skip

    async def states() -> dict[str, dict[str, Any]]:
        records = await read_topic(s.kafka_bootstrap, s.topic("budget-state"), idle_ms=300)
        return {r.key.decode(): orjson.loads(r.value) for r in records}

    async def alerts() -> list[dict[str, Any]]:
        records = await read_topic(s.kafka_bootstrap, s.topic("alerts"), idle_ms=300)
        return [orjson.loads(r.value) for r in records]

    want = {
        "tag:team=growth": expected(month),  # last month's $7 is left out
        "environment:prod": expected(Period("week", "Europe/Berlin")),
        "model:claude-x": expected(Period("day", "UTC")),
        "service:gen-svc": sum(c["data"]["cost_nanousd"] for c in calls
                               if c["timestamp"] >= now - 24 * 3_600_000),
    }  # fmt: skip

    async def spent() -> bool:
        got = await states()
        return all(got.get(k, {}).get("spend_nanousd") == v for k, v in want.items())

    await wait_for(spent, 90, f"spend per scope {want}", [worker])
    got = await states()
    assert got["tag:team=growth"]["period"] == period_of(month, now)[0]
    assert got["environment:prod"]["period_kind"] == "week"
    assert got["service:gen-svc"]["period"] == "rolling-24h"
    assert got["service:gen-svc"]["period_end_ms"] is None

    forecast_id = "budget:service:gen-svc:rolling-24h:forecast"

    def count(found: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
        return Counter((a["status"], a["id"].rsplit(":", 1)[0] if "rolling" in a["id"] else a["id"])
                       for a in found)  # fmt: skip

    async def forecast_fired() -> bool:
        return count(await alerts())[("fired", forecast_id)] == 1

    await wait_for(forecast_fired, 60, "the rolling forecast alert", [worker])
    worker.kill()
    worker.start()
    # model:claude-x ($1 a day) crosses all four thresholds; the rolling one stays armed
    await produce(s.kafka_bootstrap, s.topic("events"), encode([call(now, 3 * USD // 4)]))

    async def model_stopped() -> bool:
        return (await states()).get("model:claude-x", {}).get("state") == "stopped"

    await wait_for(model_stopped, 90, "model:claude-x stopped", [worker])
    worker.kill()
    worker.start()
    # $0.25 in the last hour projects $6 a day against $5; raised to $100 it falls back
    raised = budget_control_record("service:gen-svc", "100", (0.05, 1.0), now, "rolling", None, 24)
    await produce(s.kafka_bootstrap, s.topic("control"), [raised])

    async def resolved() -> bool:
        return count(await alerts())[("resolved", forecast_id)] == 1

    await wait_for(resolved, 90, "the forecast resolved", [worker])
    worker.kill()
    worker.start()
    # a call of tomorrow: the day budget starts clean, nothing fires twice
    tomorrow = now + 25 * 3_600_000
    await produce(s.kafka_bootstrap, s.topic("events"), encode([call(tomorrow, 1, "x")]))
    day = Period("day", "UTC")

    async def next_day() -> bool:
        state = (await states()).get("model:claude-x", {})
        return state.get("period") == period_of(day, tomorrow)[0]

    await wait_for(next_day, 90, "tomorrow's model:claude-x state", [worker])
    state = (await states())["model:claude-x"]
    assert state["spend_nanousd"] == 1 and state["state"] == "ok"
    found = count(await alerts())
    assert all(n == 1 for n in found.values()), found
    model_day = period_of(day, now)[0]
    for t in ("0.5", "0.8", "0.9", "1"):
        assert found[("fired", f"budget:model:claude-x:{model_day}:{t}")] == 1
    assert found[("fired", forecast_id)] == found[("resolved", forecast_id)] == 1
    # the rolling 5 % fired at $0.25 of $5 and re-armed when the budget rose to $100
    rolling = "budget:service:gen-svc:rolling-24h:0.05"
    assert found[("fired", rolling)] == found[("resolved", rolling)] == 1
    assert worker.alive()

"""Budgets: allows() answers from the budget-state topic; callbacks on rises; control records."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from producers import BudgetStatus
from producers.settings import GenPulseSettings
from tests.producers.conftest import ClientFactory
from tests.producers.kafka_read import read_topic

TODAY = datetime.now(UTC).date().isoformat()
YESTERDAY = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


def _state(scope: str, state: str, period: str = TODAY, percent: float = 0.0) -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "scope": scope,
            "period": period,
            "budget_nanousd": 100_000_000_000,
            "spend_nanousd": int(percent * 1_000_000_000),
            "budget_usd": "100",
            "spend_usd": str(percent),
            "remaining_usd": str(100 - percent),
            "percent_used": percent,
            "state": state,
            "updated_ms": int(time.time() * 1000),
        }
    )


def _publish(settings: GenPulseSettings, *records: tuple[str, bytes | None]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for scope, value in records:
                await producer.send_and_wait(
                    settings.topic("budget-state"), value, key=scope.encode()
                )
        finally:
            await producer.stop()

    asyncio.run(send())


def _eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_allows_follows_budget_state(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    _publish(settings, ("global", _state("global", "warning", percent=55.0)))  # before start
    client = make_client(follow_budget_state=True)
    seen: list[BudgetStatus] = []
    fired = threading.Event()

    def remember(status: BudgetStatus) -> None:
        seen.append(status)
        fired.set()

    def broken(status: BudgetStatus) -> None:
        raise RuntimeError("a callback bug must not hurt anyone")

    client.costs.on_budget_threshold(broken)
    client.costs.on_budget_threshold(remember)

    assert _eventually(lambda: client.costs.get_budget_status("global").get("state") == "warning")
    assert client.budget.allows("global") and client.budget.allows("user:alice")

    _publish(
        settings,
        ("user:alice", _state("user:alice", "stopped", percent=100.0)),
        ("user:carol", _state("user:carol", "stopped", period=YESTERDAY, percent=120.0)),
    )
    assert _eventually(lambda: not client.budget.allows("user:alice"))
    assert client.budget.allows("user:bob")
    assert _eventually(lambda: client.costs.get_budget_status("user:carol") != {})
    assert client.budget.allows("user:carol"), "yesterday's stop does not apply today"
    assert fired.wait(10)
    assert [(s.scope, s.state) for s in seen] == [("user:alice", "stopped")]
    assert seen[0].spend_usd == 100 and seen[0].remaining_usd == 0
    assert _eventually(lambda: client.stats().callback_errors == 1)

    _publish(settings, ("global", _state("global", "stopped", percent=100.0)))
    assert _eventually(lambda: not client.budget.allows("user:bob"))
    assert _eventually(lambda: ("global", "stopped") in [(s.scope, s.state) for s in seen])

    _publish(settings, ("global", _state("global", "ok", period=TODAY)), ("user:alice", None))
    assert _eventually(lambda: client.budget.allows("user:alice"))
    assert "user:alice" not in client.costs.get_budget_status()


def test_set_daily_budget_writes_the_control_record(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    client = make_client()
    client.costs.set_daily_budget("25.00", scope="user:alice")
    client.costs.set_daily_budget(100, thresholds=(0.25, 0.5, 0.75, 1.0))
    client.costs.set_budget("500", "tag:team=growth", period="month", timezone="Europe/Berlin")
    client.costs.set_budget("5", "service:api", period="rolling", hours=24, thresholds=(0.9, 1))
    with pytest.raises(ValueError, match="hours"):
        client.costs.set_budget("5", period="rolling")
    with pytest.raises(ValueError, match="time zone"):
        client.costs.set_budget("5", period="week", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="scope"):
        client.costs.set_budget("5", "team:growth")
    assert client.flush(timeout=30)
    received = read_topic(settings.kafka_bootstrap, settings.topic("control"), expect=4)
    assert [r.key for r in received] == [
        b"budget:user:alice", b"budget:global", b"budget:tag:team=growth", b"budget:service:api"
    ]  # fmt: skip
    alice, everyone, team, service = (r.value for r in received)
    assert {k: v for k, v in alice.items() if k != "updated_ms"} == {
        "v": 1,
        "kind": "budget",
        "scope": "user:alice",
        "amount_usd": "25",
        "period": "day",
        "daily_budget_usd": "25",
        "thresholds": [0.5, 0.8, 0.9, 1.0],
    }
    assert everyone["daily_budget_usd"] == "100" and everyone["thresholds"] == [0.25, 0.5, 0.75, 1]
    assert team["period"] == "month" and team["timezone"] == "Europe/Berlin"
    assert "daily_budget_usd" not in team and team["amount_usd"] == "500"
    assert service["period"] == "rolling" and service["hours"] == 24
    assert service["thresholds"] == [0.9, 1.0]
    assert client.stats().control_sent == 4

"""Budgets and alert rules land on the control topic in docs/topics.md's format."""

from __future__ import annotations

import httpx
import orjson

from api.settings import ApiSettings
from tests.api.conftest import auth
from tests.api.kafka_read import read_topic

LATENCY = {
    "id": "ttfb-p95",
    "type": "latency_slo",
    "metric": "time_to_first_byte_ms",
    "quantile": 0.95,
    "threshold": 500,
    "window_s": 300,
    "min_count": 20,
    "severity": "warning",
}
ERRORS = {"id": "errors", "type": "error_rate", "threshold": 0.2, "severity": "critical"}


async def test_budget_put_writes_the_control_record(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    body = {"daily_budget_usd": "25.10", "thresholds": [0.5, 0.8, 0.9, 1.0]}
    response = await client.put("/v1/budgets/user:alice", json=body, headers=auth("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["daily_budget_usd"] == "25.10"
    assert (await client.delete("/v1/budgets/user:alice", headers=auth("admin"))).status_code == 204
    month = {"amount_usd": "500", "period": "month", "timezone": "Europe/Berlin"}
    response = await client.put("/v1/budgets/tag:team=growth", json=month, headers=auth("admin"))
    assert response.status_code == 200, response.text
    rolling = {"amount_usd": "5", "period": "rolling", "hours": 24, "thresholds": [0.8, 1]}
    response = await client.put("/v1/budgets/service:gen", json=rolling, headers=auth("admin"))
    assert response.status_code == 200, response.text

    records = await read_topic(api_settings.kafka_bootstrap, api_settings.topic("control"), 4)
    assert [r.key for r in records] == [
        b"budget:user:alice", b"budget:user:alice", b"budget:tag:team=growth",
        b"budget:service:gen",
    ]  # fmt: skip
    value = orjson.loads(records[0].value)
    assert value == {
        "v": 1,
        "kind": "budget",
        "scope": "user:alice",
        "amount_usd": "25.10",
        "period": "day",
        "daily_budget_usd": "25.10",
        "thresholds": [0.5, 0.8, 0.9, 1.0],
        "forecast_window_minutes": 60,
        "updated_ms": value["updated_ms"],
    }
    assert records[1].value is None  # the tombstone
    team, service = (orjson.loads(r.value) for r in records[2:])
    assert (team["period"], team["timezone"], team["amount_usd"]) == (
        "month",
        "Europe/Berlin",
        "500",
    )
    assert "daily_budget_usd" not in team
    assert (service["period"], service["hours"], service["thresholds"]) == ("rolling", 24, [0.8, 1])


async def test_invalid_budgets_are_422_with_the_reason(client: httpx.AsyncClient) -> None:
    cases = [
        ("global", {"daily_budget_usd": "-1"}),
        ("global", {"daily_budget_usd": "1", "thresholds": [0.9, 0.5]}),
        ("global", {"daily_budget_usd": "NaN"}),
        ("global", {"daily_budget_usd": "1", "extra": 1}),
        ("team:x", {"daily_budget_usd": "1"}),
        ("global", {"amount_usd": "1", "daily_budget_usd": "1"}),
        ("global", {"daily_budget_usd": "1", "period": "week"}),
        ("global", {"amount_usd": "1", "period": "rolling"}),
        ("global", {"amount_usd": "1", "period": "day", "hours": 3}),
        ("global", {"amount_usd": "1", "period": "month", "timezone": "Mars/Olympus"}),
        ("global", {"amount_usd": "1", "period": "year"}),
        ("tag:Team=x", {"amount_usd": "1"}),
    ]
    for scope, body in cases:
        response = await client.put(f"/v1/budgets/{scope}", json=body, headers=auth("admin"))
        assert response.status_code == 422, (scope, body, response.text)
        assert response.json()["error"] == "invalid_request"


async def test_alert_rules_replace_the_set_and_read_back(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    admin = auth("admin")
    assert (await client.get("/v1/alert-rules", headers=admin)).json() == {"rules": []}
    first = await client.put("/v1/alert-rules", json={"rules": [LATENCY, ERRORS]}, headers=admin)
    assert first.status_code == 200, first.text
    got = (await client.get("/v1/alert-rules", headers=admin)).json()["rules"]
    assert [r["id"] for r in got] == ["errors", "ttfb-p95"]
    assert got[1]["threshold"] == 500 and got[1]["quantile"] == 0.95

    second = await client.put("/v1/alert-rules", json={"rules": [ERRORS]}, headers=admin)
    assert second.status_code == 200
    got = (await client.get("/v1/alert-rules", headers=admin)).json()["rules"]
    assert [r["id"] for r in got] == ["errors"]

    records = await read_topic(api_settings.kafka_bootstrap, api_settings.topic("control"), 4)
    by_key = [(r.key, r.value is None) for r in records]
    assert (b"rule:ttfb-p95", True) in by_key  # removed with a tombstone
    kinds = {orjson.loads(r.value)["kind"] for r in records if r.value is not None}
    assert kinds == {"alert_rule"}


async def test_rules_that_cannot_work_are_refused(client: httpx.AsyncClient) -> None:
    bad = [
        {"rules": [{"id": "x", "type": "latency_slo", "threshold": 5}]},
        {"rules": [{"id": "x", "type": "error_rate", "threshold": 2}]},
        {"rules": [ERRORS, ERRORS]},
        {"rules": [{"id": "has space", "type": "circuit_breaker"}]},
    ]
    for body in bad:
        response = await client.put("/v1/alert-rules", json=body, headers=auth("admin"))
        assert response.status_code == 422, (body, response.text)

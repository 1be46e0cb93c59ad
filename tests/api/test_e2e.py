"""End to end through the API: browser ingest -> Kafka -> real worker -> Redis -> endpoints.

A seeded workload is POSTed to /v1/collect in batches; the plain-Python oracle of the worker
tests (tests/streams/workload.py) computes every figure from what reached Kafka, and the
metrics endpoints must show exactly those figures (percentiles within the sketch's bound).
Exports must carry the same numbers; SSE must push a fresh snapshot after new events; a
budget PUT through the API must reach the worker, the SDK, and GET /v1/alerts once each.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from api.settings import ApiSettings
from producers import GenPulse
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.api.conftest import auth
from tests.api.server import running_api
from tests.api.sse import SseReader
from tests.streams.checks import assert_matches
from tests.streams.helpers import WorkerProcess, event, read_topic
from tests.streams.workload import Oracle, workload

pytestmark = pytest.mark.integration

EVENTS = 6_000
BATCH = 500


@pytest.fixture
def worker_settings(api_settings: ApiSettings) -> WorkerSettings:
    return WorkerSettings(
        kafka_bootstrap=api_settings.kafka_bootstrap,
        redis_url=api_settings.redis_url,
        topic_prefix=api_settings.topic_prefix,
        app_id=f"{api_settings.topic_prefix}-worker",
        snapshot_interval_s=0.5,
        topic_partitions=3,
    )


@pytest.fixture
def worker(worker_settings: WorkerSettings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(worker_settings, tmp_path, "w0")
    yield process
    process.stop()


class HttpReader:
    """The MetricsReader interface answered by the API's endpoints, for the shared checks."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def _get(self, group: str, start: int, end: int) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/metrics/{group}", params={"from": start, "to": end}, headers=auth("read")
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def summary(self, start: int, end: int) -> dict[str, Any]:
        return await self._get("summary", start, end)

    async def performance(self, start: int, end: int) -> dict[str, Any]:
        return await self._get("performance", start, end)

    async def costs(self, start: int, end: int) -> dict[str, Any]:
        return await self._get("costs", start, end)

    async def quality(self, start: int, end: int) -> dict[str, Any]:
        return await self._get("quality", start, end)

    async def health(self, start: int, end: int) -> dict[str, Any]:
        return await self._get("health", start, end)


async def wait_until(check: Any, timeout_s: float, what: str, worker: WorkerProcess) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        assert worker.alive(), f"worker died:\n{worker.log_tail()}"
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}\n{worker.log_tail()}")


async def post_all(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), BATCH):
        response = await client.post(
            "/v1/collect", json=events[i : i + BATCH], headers=auth("ingest")
        )
        assert response.status_code == 202, response.text
        assert response.json()["rejected"] == 0, response.text


def csv_values(text: str) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and set(rows[0]) == {"from_ms", "to_ms", "field", "value"}
    return {row["field"]: row["value"] for row in rows}


async def test_ground_truth_exports_and_live_updates_through_the_api(
    api_settings: ApiSettings, worker_settings: WorkerSettings, worker: WorkerProcess
) -> None:
    await ensure_topics(worker_settings)
    worker.start()
    now = time.time_ns() // 1_000_000
    start, end = now - 80 * 60_000, now + 60 * 60_000
    events = workload(11, EVENTS, now - 20 * 60_000, 15 * 60_000)
    with running_api(api_settings) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            await post_all(client, events)
            oracle = Oracle()
            for record in await read_topic(
                api_settings.kafka_bootstrap, api_settings.topic("events")
            ):
                oracle.feed(record.value)
            assert sum(oracle.count.values()) == len(events)
            http = HttpReader(client)

            async def drained() -> bool:
                return (await http.summary(start, end))["events"] == len(events)

            await wait_until(drained, 180, "the workload aggregated", worker)
            await assert_matches(http, oracle, start, end)  # the worker tests' own checks

            # exports: same numbers as the endpoints for the same range
            span = {"from": start, "to": end}
            for group in ("summary", "costs", "quality"):
                endpoint = await http._get(group, start, end)
                exported = await client.get(
                    f"/v1/export/{group}.csv", params=span, headers=auth("read")
                )
                values = csv_values(exported.text)
                for field in ("total_generations", "total_cost_nanousd", "scored_count", "edits"):
                    if field in endpoint:
                        assert values[field] == str(endpoint[field]), (group, field)
                as_json = await client.get(
                    f"/v1/export/{group}.json", params=span, headers=auth("read")
                )
                assert orjson.loads(as_json.content) == [
                    {"from_ms": start, "to_ms": end, "data": endpoint}
                ]
            hourly = await client.get(
                "/v1/export/summary.json", params={**span, "step": "1h"}, headers=auth("read")
            )
            buckets = orjson.loads(hourly.content)
            assert (
                sum(b["data"]["total_generations"] for b in buckets)
                == oracle.count["generation_started"]
            )

            # live: a new snapshot reaches an SSE client after new events
            async with client.stream(
                "GET", "/v1/stream", headers=auth("read"), timeout=httpx.Timeout(60, read=None)
            ) as response:
                stream = SseReader(response.aiter_lines())
                first = orjson.loads((await stream.next_snapshot(10)).data)
                before = first["summary"]["total_generations"]
                fresh = [event("generation_started", time.time_ns() // 1_000_000, "live-1")]
                await post_all(client, fresh)
                posted = time.monotonic()
                while True:
                    snapshot = orjson.loads((await stream.next_snapshot(30)).data)
                    if snapshot["summary"]["total_generations"] > before:
                        break
                delay = time.monotonic() - posted
                assert delay <= 2.0, f"the SSE snapshot came {delay:.2f}s after the events"


async def test_budget_put_reaches_worker_sdk_and_alerts_once(
    api_settings: ApiSettings, worker_settings: WorkerSettings, worker: WorkerProcess
) -> None:
    await ensure_topics(worker_settings)
    worker.start()
    pulse = GenPulse(
        service="api-e2e",
        bootstrap_servers=api_settings.kafka_bootstrap,
        topic_prefix=api_settings.topic_prefix,
    )
    try:
        with running_api(api_settings) as base:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                put = await client.put(
                    "/v1/budgets/global", json={"daily_budget_usd": "1"}, headers=auth("admin")
                )
                assert put.status_code == 200, put.text

                async def budget_known() -> list[dict[str, Any]]:
                    got = await client.get("/v1/budgets", headers=auth("read"))
                    return [b for b in got.json() if b["scope"] == "global"]

                # spend arrives in small steps until the worker has seen the budget
                now = time.time_ns() // 1_000_000
                call = {
                    "model": "claude-sonnet",
                    "tier": "sonnet",
                    "input_tokens": 1,
                    "output_tokens": 1,
                }

                def spend(nanos: int, n: int) -> list[dict[str, Any]]:
                    return [event("model_called", now, f"b-{n}", "bob", **call, cost_nanousd=nanos)]

                await post_all(client, spend(100_000_000, 0))  # 10 %
                await wait_until(budget_known, 60, "the budget in GET /v1/budgets", worker)
                await post_all(client, spend(950_000_000, 1))  # 105 %: every threshold

                async def stopped() -> list[dict[str, Any]]:
                    got = (await budget_known())[0]
                    return [got] if got["state"] == "stopped" else []

                state = (await wait_until(stopped, 60, "state stopped", worker))[0]
                assert state["spend_nanousd"] == 1_050_000_000 and state["budget_usd"] == "1"

                async def budget_alerts() -> list[dict[str, Any]]:
                    got = (await client.get("/v1/alerts?scope=global", headers=auth("read"))).json()
                    return [a for a in got if a["rule"] == "budget"]  # not the forecast

                async def four_alerts() -> list[dict[str, Any]]:
                    got = await budget_alerts()
                    return got if len(got) >= 4 else []

                alerts = await wait_until(four_alerts, 60, "four alerts", worker)
                ids = [a["id"] for a in alerts]
                assert len(ids) == len(set(ids)) == 4
                assert {a["severity"] for a in alerts} == {"warning", "alert", "critical", "stop"}

                deadline = time.monotonic() + 30
                while pulse.budget.allows("global") and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                assert not pulse.budget.allows("global")

                await post_all(client, spend(1, 2))  # more spend: no alert fires again
                await asyncio.sleep(2)
                again = await budget_alerts()
                assert sorted(a["id"] for a in again) == sorted(ids)
                exported = await client.get(
                    "/v1/export/alerts.csv", params={"window": "24h"}, headers=auth("read")
                )
                rows = list(csv.DictReader(io.StringIO(exported.text)))
                assert sorted(r["id"] for r in rows if r["rule"] == "budget") == sorted(ids)
    finally:
        pulse.close()

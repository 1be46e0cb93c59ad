"""Sliced reads through the API against the real worker (issue 14, item 2).

A seeded workload of 3 services, 2 environments (and events without one), 5 values of the
`feature` tag and a few hundred users goes through /v1/collect into Kafka and a real
worker. The plain-Python oracle of the worker tests, fed only the records a filter
matches, must equal every filtered route (the worker tests' own checks, run over HTTP with
the filter applied); grouped answers must equal the oracle per value and add up to the
total; top users, grouped and filtered exports, the 422s, the cache keyed by filter and
the bounded Prometheus exposition are checked on the same stack.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.client import MetricsClient
from api.exposition import MAX_LABEL_VALUES
from api.settings import ApiSettings
from producers.contract import decode_event
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from streams.views import USER_COST_FIELDS
from tests.api.conftest import ADMIN_TOKEN, INGEST_KEY, READ_TOKEN, auth
from tests.api.server import running_api
from tests.streams.checks import assert_matches
from tests.streams.helpers import WorkerProcess, event, read_topic
from tests.streams.workload import Oracle, workload

pytestmark = pytest.mark.integration

SERVICES = ("generator", "editor", "exporter")
ENVIRONMENTS = ("prod", "staging", None)
FEATURES = ("uvp", "benefits", "headline", "tone", "seo")
EXTRA_SERVICES = 25  # more services than /metrics may label: folded into `other`
EXTRA_USERS = 400  # one model call each, so users far outnumber any label's bound


@dataclass
class Stack:
    base: str
    records: list[bytes]
    start: int
    end: int

    def oracle(self, keep: Callable[[dict[str, Any]], bool]) -> Oracle:
        """The oracle over the records whose decoded event `keep` accepts."""
        oracle = Oracle()
        for raw in self.records:
            if keep(orjson.loads(raw)):
                oracle.feed(raw)
        return oracle


def dimensions(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Give each session a service, maybe an environment and maybe a `feature` tag."""
    rng = random.Random(seed)
    chosen: dict[str, tuple[str, str | None, str | None]] = {}
    for e in events:
        sid = e["session_id"]
        if sid not in chosen:
            feature = rng.choice((*FEATURES, None))
            chosen[sid] = (rng.choice(SERVICES), rng.choice(ENVIRONMENTS), feature)
        service, environment, feature = chosen[sid]
        e["service"] = service
        if environment is not None:
            e["environment"] = environment
        if feature is not None:
            e["tags"] = {"feature": feature, "team": "growth"}
    return events


def spread_calls(now: int) -> list[dict[str, Any]]:
    """Model calls by many users of many services: labels they must not multiply."""
    out = []
    for i in range(EXTRA_USERS):
        call = event(
            "model_called",
            now - 30_000,
            f"x-{i}",
            f"many-{i}",
            model="claude-haiku",
            tier="haiku",
            input_tokens=10,
            output_tokens=5,
            cost_nanousd=1_000 + i,
        )
        call["service"] = f"svc-{i % EXTRA_SERVICES:02d}"
        call["tags"] = {"request": f"r-{i}"}
        out.append(call)
    return out


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    prefix = f"slice-{uuid.uuid4().hex[:10]}"
    tmp: Path = tmp_path_factory.mktemp("slicing")
    api_settings = ApiSettings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=prefix,
        api_read_tokens=[READ_TOKEN],
        api_admin_tokens=[ADMIN_TOKEN],
        api_ingest_keys=[INGEST_KEY],
    )
    worker_settings = WorkerSettings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=prefix,
        app_id=f"{prefix}-worker",
        snapshot_interval_s=0.5,
        topic_partitions=3,
    )
    asyncio.run(ensure_topics(worker_settings))
    worker = WorkerProcess(worker_settings, tmp, "w0").start()
    now = time.time_ns() // 1_000_000
    events = dimensions(workload(31, 5_000, now - 12 * 60_000, 11 * 60_000), 31)
    events += spread_calls(now)
    try:
        with running_api(api_settings) as base, httpx.Client(base_url=base, timeout=60) as http:
            for i in range(0, len(events), 500):
                sent = http.post("/v1/collect", json=events[i : i + 500], headers=auth("ingest"))
                assert sent.status_code == 202 and sent.json()["rejected"] == 0, sent.text
            topic = api_settings.topic("events")
            records = [r.value for r in asyncio.run(read_topic(kafka_bootstrap, topic))]
            assert len(records) == len(events)
            start, end = now - 60 * 60_000, now + 60_000
            deadline = time.monotonic() + 120
            while True:
                got = http.get(
                    "/v1/metrics/summary", params={"from": start, "to": end}, headers=auth("read")
                ).json()
                if got.get("events") == len(events):
                    break
                assert time.monotonic() < deadline, f"not aggregated: {got}\n{worker.log_tail()}"
                assert worker.alive(), worker.log_tail()
                time.sleep(0.3)
            yield Stack(base, records, start, end)
    finally:
        worker.stop()


class HttpReader:
    """The reader interface of the shared checks, answered by the API with fixed filters."""

    def __init__(
        self, client: httpx.AsyncClient, filters: dict[str, str], oracle: Oracle | None = None
    ) -> None:
        self.client = client
        self.filters = filters
        self.oracle = oracle

    async def get(self, group: str, start: int, end: int, **extra: Any) -> Any:
        params = {"from": start, "to": end, **self.filters, **extra}
        response = await self.client.get(
            f"/v1/metrics/{group}", params=params, headers=auth("read")
        )
        assert response.status_code == 200, (group, params, response.text)
        return response.json()

    async def summary(self, start: int, end: int) -> Any:
        return await self.get("summary", start, end)

    async def performance(self, start: int, end: int) -> Any:
        return await self.get("performance", start, end)

    async def costs(self, start: int, end: int) -> Any:
        """A service/environment/model/tier slice has no per-user figures (the user table is
        not kept per cell): they must be null; the shared checks then see the oracle's own
        values there and check every other figure."""
        body = await self.get("costs", start, end)
        if self.oracle is not None:
            assert all(body[k] is None for k in USER_COST_FIELDS), body
            o = self.oracle
            users = len(o.tokens_by_user)
            body.update(
                user_count=users,
                by_user=[],
                cost_per_user_nanousd=sum(o.cost_by_user.values()) / users,
                average_tokens_per_user=sum(o.tokens_by_user.values()) / users,
            )
        return body

    async def quality(self, start: int, end: int) -> Any:
        return await self.get("quality", start, end)

    async def health(self, start: int, end: int) -> Any:
        return await self.get("health", start, end)


def tag(e: dict[str, Any]) -> str | None:
    return (e.get("tags") or {}).get("feature")


async def test_filtered_routes_equal_the_oracle_of_the_matching_events(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base, timeout=60) as client:
        for filters, keep in (
            ({"service": "editor"}, lambda e: e["service"] == "editor"),
            ({"environment": "prod"}, lambda e: e.get("environment") == "prod"),
            ({"environment": "none"}, lambda e: "environment" not in e),
            (
                {"service": "generator", "environment": "staging"},
                lambda e: e["service"] == "generator" and e.get("environment") == "staging",
            ),
        ):
            oracle = stack.oracle(keep)
            await assert_matches(
                HttpReader(client, filters, oracle), oracle, stack.start, stack.end
            )

        # model and tier filters: the matching model calls
        for filters, keep in (
            ({"model": "claude-opus"}, lambda e: e["data"].get("model") == "claude-opus"),
            ({"tier": "haiku"}, lambda e: e["data"].get("tier") == "haiku"),
        ):
            oracle = stack.oracle(lambda e, k=keep: e["type"] == "model_called" and k(e))
            costs = await HttpReader(client, filters).costs(stack.start, stack.end)
            assert costs["total_cost_nanousd"] == oracle.total_cost
            assert costs["total_calls"] == sum(oracle.calls_by_model.values())
            assert costs["total_input_tokens"] == oracle.tokens["input_tokens"]

        # user= and tag=: compact figures, exact
        for filters, keep in (
            ({"user": "user-7"}, lambda e: e.get("user_id") == "user-7"),
            ({"tag": "feature:tone"}, lambda e: tag(e) == "tone"),
            ({"tag": "feature:none"}, lambda e: tag(e) is None),
        ):
            oracle = stack.oracle(keep)
            http = HttpReader(client, filters)
            summary = await http.summary(stack.start, stack.end)
            assert summary["events"] == sum(oracle.count.values()), filters
            assert summary["total_generations"] == oracle.count["generation_started"], filters
            assert summary["total_cost_nanousd"] == oracle.total_cost, filters
            perf = await http.performance(stack.start, stack.end)
            assert perf["generations_started"] == oracle.count["generation_started"]
            assert perf["phases"] is None  # not kept per user or tag: null, not a guess

        # daily costs with a filter
        today = datetime.now(UTC).date()
        days = await client.get(
            "/v1/costs/daily",
            params={
                "from": (today - timedelta(1)).isoformat(),
                "to": today.isoformat(),
                "service": "exporter",
            },
            headers=auth("read"),
        )
        assert days.status_code == 200, days.text
        oracle = stack.oracle(lambda e: e["service"] == "exporter")
        assert sum(d["total_cost_nanousd"] for d in days.json()) == oracle.total_cost


async def test_grouped_answers_equal_the_oracle_per_value_and_add_up(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base, timeout=60) as client:
        http = HttpReader(client, {})
        total = await http.summary(stack.start, stack.end)
        for group_by, value_of in (
            ("service", lambda e: e["service"]),
            ("environment", lambda e: e.get("environment", "none")),
            ("tag:feature", lambda e: tag(e) or "none"),
            ("tier", lambda e: (e["type"] == "model_called" and e["data"].get("tier")) or "none"),
        ):
            seen = Counter(value_of(orjson.loads(r)) for r in stack.records)
            answer = await http.get("summary", stack.start, stack.end, group_by=group_by)
            assert set(answer) == {"start_ms", "end_ms", "group_by", "groups", "other"}
            assert answer["group_by"] == group_by
            values = [g["value"] for g in answer["groups"]]
            assert len(values) == len(set(values))
            parts = answer["groups"] + ([answer["other"]] if answer["other"] else [])
            assert sum(g["events"] for g in parts) == total["events"], group_by
            assert sum(g["total_cost_nanousd"] for g in parts) == total["total_cost_nanousd"]
            for group in answer["groups"]:
                oracle = stack.oracle(lambda e, v=group["value"], f=value_of: f(e) == v)
                assert group["events"] == seen[group["value"]] == sum(oracle.count.values())
                assert group["total_generations"] == oracle.count["generation_started"]
                assert group["total_cost_nanousd"] == oracle.total_cost
            if group_by == "service":
                assert set(SERVICES) <= set(values)

        # full views per service: the worker tests' figures of that service's events
        for view in ("performance", "costs", "quality", "health"):
            answer = await http.get(view, stack.start, stack.end, group_by="service")
            for group in answer["groups"]:
                if group["value"] not in SERVICES:
                    continue
                oracle = stack.oracle(lambda e, v=group["value"]: e["service"] == v)
                if view == "performance":
                    assert group["phases"]["analysis"]["count"] == len(
                        oracle.values["phase_duration_ms:analysis"]
                    )
                elif view == "costs":
                    assert group["total_cost_nanousd"] == oracle.total_cost
                    assert group["haiku_calls"] == oracle.by_tier["haiku"]["calls"]
                elif view == "quality":
                    assert group["scored_count"] == len(oracle.scores)
                    assert group["acceptance_rate"] == oracle.share("approved_without_edit")
                else:
                    assert group["generations_failed"] == oracle.count["generation_failed"]
                    assert group["errors_by_type"] == dict(sorted(oracle.errors_by_type.items()))

        # a grouped time series: each service's generations per step
        series = await client.get(
            "/v1/metrics/timeseries",
            params={
                "from": stack.start,
                "to": stack.end,
                "metric": "generations",
                "step": "5m",
                "group_by": "service",
            },
            headers=auth("read"),
        )
        assert series.status_code == 200, series.text
        lines = {s["value"]: s["points"] for s in series.json()}
        for service in SERVICES:
            oracle = stack.oracle(lambda e, s=service: e["service"] == s)
            assert (
                sum(p["value"] or 0 for p in lines[service]) == oracle.count["generation_started"]
            )


async def test_top_users_rank_exactly(stack: Stack) -> None:
    costs: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    generations: Counter[str] = Counter()
    for raw in stack.records:
        e = decode_event(raw)
        if e.user_id is None:
            continue
        if e.type == "model_called":
            if e.data.get("priced", True):
                costs[e.user_id] += e.data.get("cost_nanousd") or 0
            tokens[e.user_id] += e.data["input_tokens"] + e.data["output_tokens"]
        elif e.type == "generation_started":
            generations[e.user_id] += 1
    async with httpx.AsyncClient(base_url=stack.base, timeout=60) as client:
        for by, truth in (("cost", costs), ("tokens", tokens), ("generations", generations)):
            got = await client.get(
                "/v1/top/users",
                params={"from": stack.start, "to": stack.end, "by": by, "limit": 20},
                headers=auth("read"),
            )
            assert got.status_code == 200, got.text
            body = got.json()
            assert body["by"] == by and body["complete"] is True and len(body["users"]) == 20
            figure = {"cost": "cost_nanousd", "tokens": "tokens", "generations": "generations"}[by]
            ranked = [u[figure] for u in body["users"]]
            assert ranked == sorted(truth.values(), reverse=True)[:20], by
            for row in body["users"]:
                assert row[figure] == truth[row["user"]]
                assert row["cost_nanousd"] == costs[row["user"]]
            assert body["other"][figure] == sum(truth.values()) - sum(ranked)
        with MetricsClient(stack.base, READ_TOKEN) as typed:  # the Python client, same answers
            top = typed.top_users("tokens", 5, from_=stack.start, to=stack.end)
            assert [u.tokens for u in top.users] == sorted(tokens.values(), reverse=True)[:5]
            by_service = typed.grouped("costs", "service", from_=stack.start, to=stack.end)
            assert {g.value for g in by_service.groups} >= set(SERVICES)
        one = await client.get(
            "/v1/top/users", params={"window": "1h", "user": "user-7"}, headers=auth("read")
        )
        assert [u["user"] for u in one.json()["users"]] == ["user-7"]


async def test_exports_are_sliced_and_grouped(stack: Stack) -> None:
    span = {"from": stack.start, "to": stack.end}
    async with httpx.AsyncClient(base_url=stack.base, timeout=60) as client:
        http = HttpReader(client, {})
        grouped = await http.get("summary", stack.start, stack.end, group_by="service")
        exported = await client.get(
            "/v1/export/summary.csv", params={**span, "group_by": "service"}, headers=auth("read")
        )
        assert exported.status_code == 200, exported.text
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [r["service"] for r in rows] == [g["value"] for g in grouped["groups"]] + (
            ["other"] if grouped["other"] else []
        )
        for row, group in zip(rows, grouped["groups"], strict=False):
            assert row["total_generations"] == str(group["total_generations"])
            assert row["total_cost_nanousd"] == str(group["total_cost_nanousd"])
        as_json = await client.get(
            "/v1/export/costs.json", params={**span, "service": "editor"}, headers=auth("read")
        )
        endpoint = await HttpReader(client, {"service": "editor"}).costs(stack.start, stack.end)
        assert orjson.loads(as_json.content) == [
            {"from_ms": stack.start, "to_ms": stack.end, "data": endpoint}
        ]


async def test_bad_and_unanswerable_filters_are_422_and_the_cache_keys_on_them(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.base, timeout=60) as client:
        for path, params, code in (
            ("/v1/metrics/summary", {"tag": "feature"}, "invalid_filter"),
            ("/v1/metrics/costs", {"group_by": "colour"}, "invalid_filter"),
            ("/v1/metrics/timeseries", {"metric": "events", "service": ""}, "invalid_filter"),
            ("/v1/export/alerts.csv", {"service": "editor"}, "invalid_filter"),
            ("/v1/export/daily-costs.json", {"group_by": "service"}, "invalid_filter"),
            ("/v1/metrics/summary", {"user": "user-7", "service": "editor"}, "unsupported_filter"),
            ("/v1/metrics/quality", {"group_by": "user", "tier": "opus"}, "unsupported_filter"),
            (
                "/v1/metrics/timeseries",
                {"metric": "p95_duration_ms", "user": "user-7"},
                "unsupported_filter",
            ),
            ("/v1/top/users", {"service": "editor"}, "unsupported_filter"),
        ):
            got = await client.get(path, params=params, headers=auth("read"))
            assert got.status_code == 422, (path, params, got.text)
            assert got.json()["error"] == code, (path, params, got.text)
            assert got.json()["message"], got.text
        # one snapshot generation, three slices: each its own answer, repeatable
        window = {"window": "1h"}
        answers = {}
        for _ in range(2):
            for service in SERVICES:
                got = await client.get(
                    "/v1/metrics/summary",
                    params={**window, "service": service},
                    headers=auth("read"),
                )
                answers.setdefault(service, set()).add(got.json()["events"])
        expected = Counter(orjson.loads(r)["service"] for r in stack.records)
        assert {s: a.pop() for s, a in answers.items()} == {s: expected[s] for s in SERVICES}


async def test_prometheus_labels_stay_bounded_with_many_users_services_and_tags(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.base, timeout=60) as client:
        text = (await client.get("/metrics", headers=auth("read"))).text
    for value in ('"many-', '"user-', '"r-'):  # user ids and tag values are never labels
        assert value not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for family in families.values():
        distinct: dict[str, set[str]] = {}
        for sample in family.samples:
            for label, value in sample.labels.items():
                distinct.setdefault(label, set()).add(value)
        for label, values in distinct.items():
            assert len(values) <= MAX_LABEL_VALUES, (family.name, label, len(values))
    cost = families["genpulse_service_cost_today_usd"].samples
    services = {s.labels["service"]: s.value for s in cost}
    assert len(services) == MAX_LABEL_VALUES and "other" in services  # 28 services folded
    total = families["genpulse_cost_today_usd"].samples[0].value
    assert sum(services.values()) == pytest.approx(total)

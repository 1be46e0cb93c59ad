"""Issue 14's slicing acceptance: a seeded workload (3 services, 2 environments, 5 tag values,
20,000 users) through the SDK into a cold `genpulse worker` with a small top-K (50), then
every sliced and grouped figure MetricsReader gives equals plain Python computed from the
records read back from Kafka: counts and money exact, percentiles within the sketch's 1 %,
`other` exactly what fell out of the top-K, totals unchanged."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from producers import GenPulse
from streams import keys
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from streams.slices import FIGURES, N_FIGURES
from streams.slicing import NONE_VALUE, UnsupportedSlice, Where
from tests.streams.helpers import WorkerProcess, read_topic, wait_for
from tests.streams.workload import quantile_ok

pytestmark = pytest.mark.integration

TOP_K = 50
USERS = 20_000
SERVICES = ("generator", "editor", "exporter")
ENVIRONMENTS = ("prod", "staging")
FEATURES = ("uvp", "benefits", "headline", "faq", "summary")
MODELS = ("claude-3-5-haiku-20241022", "claude-3-5-sonnet-20241022", "claude-3-opus-20240229")
SEED = 1414


def send(settings: WorkerSettings) -> None:
    """One session per user through six SDK clients (service x environment); a tag on most
    calls, none on some; a few events without a user."""
    rng = random.Random(SEED)
    clients = {
        (s, e): GenPulse(
            service=s,
            environment=e,
            bootstrap_servers=settings.kafka_bootstrap,
            topic_prefix=settings.topic_prefix,
        )
        for s in SERVICES
        for e in ENVIRONMENTS
    }
    try:
        for n in range(USERS):
            pulse = clients[(rng.choice(SERVICES), rng.choice(ENVIRONMENTS))]
            user = f"user-{n}" if n % 97 else None
            sid = f"s-{n}"
            tags = {"feature": rng.choice(FEATURES)} if rng.random() < 0.8 else None
            track = pulse.events.track
            track("generation_started", {}, session_id=sid, user_id=user, tags=tags)
            if rng.random() < 0.5:
                elapsed = rng.lognormvariate(5.5, 0.5)
                track(
                    "first_byte", {"elapsed_ms": elapsed}, session_id=sid, user_id=user, tags=tags
                )
            heavy = n < 30  # a few big spenders: many calls
            for _ in range(40 if heavy else 1):
                pulse.costs.record_model_call(
                    rng.choice(MODELS),
                    rng.randint(100, 3000),
                    rng.randint(50, 1500),
                    user_id=user,
                    session_id=sid,
                    duration_ms=rng.lognormvariate(7, 0.4),
                    tags=tags,
                )
            if rng.random() < 0.1:
                track("error_occurred", {"error_type": "timeout"}, session_id=sid, user_id=user)
                track("generation_failed", {}, session_id=sid, user_id=user, tags=tags)
            else:
                duration = rng.lognormvariate(8, 0.5)
                track(
                    "generation_completed",
                    {"duration_ms": duration},
                    session_id=sid,
                    user_id=user,
                    tags=tags,
                )
    finally:
        for pulse in clients.values():
            pulse.close()


CELL_DIMS = ("service", "environment", "model", "tier")


class Truth:
    """Exact figures per (dimension, value) and per cell from the records read back (events,
    and the SDK's metric batches, which carry a service only), FIGURES order."""

    def __init__(self, records: list[Any], batches: list[Any]) -> None:
        self.rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * N_FIGURES)
        self.cells: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0] * N_FIGURES)
        self.total = [0] * N_FIGURES
        self.durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.by_partition_minute: dict[tuple[int, int, str], list[int]] = defaultdict(
            lambda: [0] * N_FIGURES
        )
        self.minute_total: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * N_FIGURES)
        for record in records:
            e = orjson.loads(record.value)
            row = figures(e)
            d = e.get("data") or {}
            dims = {
                "service": e["service"],
                "environment": e.get("environment") or NONE_VALUE,
                "model": d.get("model") or NONE_VALUE,
                "tier": d.get("tier") or NONE_VALUE,
                "user": e.get("user_id") or NONE_VALUE,
                "tag:feature": (e.get("tags") or {}).get("feature", NONE_VALUE),
            }
            self.count(dims, row)
            minute = e["timestamp"] - e["timestamp"] % 60_000
            add(self.minute_total[(record.partition, minute)], row)
            if e.get("user_id"):
                add(self.by_partition_minute[(record.partition, minute, e["user_id"])], row)
            if e["type"] == "generation_completed":
                for dim in ("service", "environment"):
                    self.durations[(dim, dims[dim])].append(d["duration_ms"])
                key = f"{dims['service']}/{dims['environment']}"
                self.durations[("cell", key)].append(d["duration_ms"])

        for record in batches:
            service = orjson.loads(record.value)["service"]
            dims = dict.fromkeys((*CELL_DIMS, "user", "tag:feature"), NONE_VALUE)
            self.count({**dims, "service": service}, [1, *[0] * (N_FIGURES - 1)])

    def count(self, dims: dict[str, str], row: list[int]) -> None:
        for dim, value in dims.items():
            add(self.rows[(dim, value)], row)
        add(self.cells[tuple(dims[d] for d in CELL_DIMS)], row)
        add(self.total, row)

    def row(self, dim: str, value: str) -> list[int]:
        return self.rows.get((dim, value), [0] * N_FIGURES)

    def where(self, **want: str) -> list[int]:
        out = [0] * N_FIGURES
        for cell, row in self.cells.items():
            if all(cell[CELL_DIMS.index(d)] == v for d, v in want.items()):
                add(out, row)
        return out


def figures(e: dict[str, Any]) -> list[int]:
    row = [0] * N_FIGURES
    row[0] = 1
    kind, d = e["type"], e.get("data") or {}
    index = {
        "generation_started": 1,
        "generation_completed": 2,
        "generation_failed": 3,
        "generation_canceled": 4,
        "error_occurred": 5,
    }.get(kind)
    if index is not None:
        row[index] = 1
    if kind == "model_called":
        row[6] = 1
        row[7], row[8] = d["input_tokens"], d["output_tokens"]
        if d.get("priced", True) and d.get("cost_nanousd") is not None:
            row[9] = d["cost_nanousd"]
        else:
            row[10] = 1
    return row


def add(target: list[int], row: list[int]) -> None:
    for i, v in enumerate(row):
        target[i] += v


def of_summary(view: dict[str, Any]) -> dict[str, int]:
    return {
        "events": view["events"],
        "generations": view["total_generations"],
        "completed": view["completed_generations"],
        "cost": view["total_cost_nanousd"],
    }


def of_row(row: list[int]) -> dict[str, int]:
    f = dict(zip(FIGURES, row, strict=True))
    return {"events": f["events"], "generations": f["generations"],
            "completed": f["completed"], "cost": f["cost_nanousd"]}  # fmt: skip


async def test_sliced_and_grouped_figures_match_plain_python(
    worker_settings: WorkerSettings,
    reader: MetricsReader,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    s = worker_settings
    workers.append(
        WorkerProcess(s, tmp_path, "w0", GENPULSE_SLICE_TOP_K=str(TOP_K)).start()
    )  # cold: the worker creates the topics while the SDK buffers
    began = int(time.time() * 1000)
    send(s)
    records = await read_topic(s.kafka_bootstrap, s.topic("events"))
    metric_batches = await read_topic(s.kafka_bootstrap, s.topic("metrics"))
    truth = Truth(records, metric_batches)
    batches = len(metric_batches)
    assert truth.total[0] == len(records) + batches and len(records) > 3 * USERS
    short = (began - began % 60_000 - 120_000, int(time.time() * 1000) + 120_000)
    hour = keys.HOUR_MS
    long = (began - began % hour - 2 * hour, began - began % hour + 3 * hour)  # hourly rows

    async def drained() -> bool | tuple[int, int]:
        got = (await reader.summary(*short))["events"]
        return got == len(records) + batches or (got, len(records) + batches)

    await wait_for(drained, 180, "every event aggregated", workers)

    for start, end in (short, long):
        whole = await reader.summary(start, end)
        assert whole["events"] == len(records) + batches
        assert whole["total_cost_nanousd"] == truth.total[9]
        for dim in ("service", "environment", "model", "tier"):
            grouped = await reader.summary(start, end, group_by=dim)
            assert grouped["other"] is None  # cells are unbounded (low cardinality)
            values = {g["value"] for g in grouped["groups"]}
            assert values == {v for d, v in truth.rows if d == dim}
            for g in grouped["groups"]:
                assert of_summary(g) == of_row(truth.row(dim, g["value"])), (dim, g["value"])
            assert sum(g["events"] for g in grouped["groups"]) == whole["events"]
            assert sum(g["total_cost_nanousd"] for g in grouped["groups"]) == truth.total[9]

        for service in SERVICES:
            for env in ENVIRONMENTS:
                where = Where(service=service, environment=env)
                perf = await reader.performance(start, end, where)
                values = truth.durations[("cell", f"{service}/{env}")]
                assert perf["total"]["count"] == len(values)
                for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                    assert quantile_ok(values, q, perf["total"][f"{name}_duration_ms"])
                want = truth.where(service=service, environment=env)
                assert of_summary(await reader.summary(start, end, where)) == of_row(want)
        costs = await reader.costs(start, end, Where(tier="opus", environment="prod"))
        opus_prod = truth.where(tier="opus", environment="prod")
        assert costs["total_cost_nanousd"] == opus_prod[9] > 0
        assert costs["total_calls"] == opus_prod[6]
        by_env = await reader.costs(start, end, Where(service="editor"), group_by="environment")
        for g in by_env["groups"]:
            assert (
                g["total_cost_nanousd"] == truth.where(service="editor", environment=g["value"])[9]
            )

        # tags: 5 values and none, fewer than K: exact groups, nothing in other
        tagged = await reader.summary(start, end, group_by="tag:feature")
        assert tagged["other"] is None
        assert {g["value"] for g in tagged["groups"]} == {*FEATURES, NONE_VALUE}
        for g in tagged["groups"]:
            if g["value"] != NONE_VALUE:
                assert of_summary(g) == of_row(truth.row("tag:feature", g["value"]))
        one = await reader.costs(start, end, Where(tag=("feature", "faq")))
        assert one["total_cost_nanousd"] == truth.row("tag:feature", "faq")[9]
        assert one["by_model"] is None  # not kept per tag (docs/slicing.md)

        # users: 20,000 against K = 50 per partition and bucket: `other` is not empty
        users = await reader.summary(start, end, group_by="user")
        assert users["other"] is not None and users["other"]["events"] > 0
        listed = [g for g in users["groups"] if g["value"] != NONE_VALUE]
        assert listed, "some users are exact (seen on one partition, absent from the others)"
        for g in listed:
            assert of_summary(g) == of_row(truth.row("user", g["value"])), g["value"]
        none = next(g for g in users["groups"] if g["value"] == NONE_VALUE)
        assert none["events"] == truth.row("user", NONE_VALUE)[0]
        total_events = sum(g["events"] for g in users["groups"]) + users["other"]["events"]
        assert total_events == whole["events"]
        total_cost = sum(g["total_cost_nanousd"] for g in users["groups"])
        assert total_cost + users["other"]["total_cost_nanousd"] == truth.total[9]

        top = await reader.top_users(start, end, by="cost", limit=20)
        assert top["complete"] is False
        for u in top["users"]:
            row = truth.row("user", u["user"])
            assert (u["cost_nanousd"], u["calls"], u["generations"]) == (row[9], row[6], row[1])
        costs_ranked = [u["cost_nanousd"] for u in top["users"]]
        assert costs_ranked == sorted(costs_ranked, reverse=True)
        ranked_cost = sum(u["cost_nanousd"] for u in top["users"]) + top["other"]["cost_nanousd"]
        assert ranked_cost == truth.total[9] - truth.row("user", NONE_VALUE)[9]

        answered = 0
        for user in [g["value"] for g in listed[:5]] + [f"user-{n}" for n in range(1, USERS, 1999)]:
            try:
                got = await reader.summary(start, end, Where(user=user))
            except UnsupportedSlice:
                continue  # fell into some table's `other`: refused, never a wrong figure
            assert of_summary(got) == of_row(truth.row("user", user))
            assert got["average_duration_ms"] is None  # no sketches per user
            answered += 1
        assert answered >= min(5, len(listed))

        health = await reader.health(start, end, group_by="service")
        for g in health["groups"]:
            assert g["generations_failed"] == truth.row("service", g["value"])[3]
            assert g["errors"] == truth.row("service", g["value"])[5]

    start, end = short
    plain = await reader.timeseries("events", start, end, 60_000)
    for group_by in ("service", "user", "tag:feature"):
        series = await reader.timeseries("events", start, end, 60_000, group_by=group_by)
        assert len(series) <= 11
        for i, point in enumerate(plain):
            assert sum(line["points"][i]["value"] for line in series) == point["value"]
    by_service = await reader.timeseries("cost_nanousd", start, end, 60_000, group_by="service")
    for line in by_service:
        assert sum(p["value"] for p in line["points"]) == truth.row("service", line["value"])[9]
    with pytest.raises(UnsupportedSlice):
        await reader.timeseries("p95_duration_ms", start, end, 60_000, Where(user="user-1"))
    day = time.strftime("%Y-%m-%d", time.gmtime(began / 1000))
    (daily,) = await reader.daily_costs(day, day, Where(service="generator"))
    assert daily["total_cost_nanousd"] == truth.where(service="generator")[9]
    (tagged_day,) = await reader.daily_costs(day, day, Where(tag=("feature", "uvp")))
    assert tagged_day["total_cost_nanousd"] == truth.row("tag:feature", "uvp")[9]

    await assert_stored_tables(reader, truth)


async def assert_stored_tables(reader: MetricsReader, truth: Truth) -> None:
    """Each stored minute table of users: at most K values, each exact for its partition and
    minute, `other` exactly the rest of that partition's minute."""
    spilled = 0
    minutes = {m for _, m in truth.minute_total}
    for minute in minutes:
        name = keys.slice_table(reader.prefix, "minute", minute, "user")
        fields = await reader.redis.hgetall(name)
        per_part: dict[int, dict[str, list[int]]] = defaultdict(dict)
        others: dict[int, list[int]] = {}
        for field, blob in fields.items():
            text = field.decode()
            if "|" in text:
                part, _, user = text.partition("|")
                per_part[int(part.split(":")[1])][user] = orjson.loads(blob)
            elif text.endswith("#other"):
                others[int(text.split(":")[1].split("#")[0])] = orjson.loads(blob)
        for part, values in per_part.items():
            assert len(values) <= TOP_K
            rest = [0] * N_FIGURES
            for (p, m, user), row in truth.by_partition_minute.items():
                if p != part or m != minute:
                    continue
                if user in values:
                    assert values[user] == row, (part, minute, user)
                else:
                    add(rest, row)
            assert others.get(part, [0] * N_FIGURES) == rest
            spilled += rest[0] > 0
    assert spilled > 0

"""The worker at high cardinality (issue 14): events/s with 100,000 distinct users and 1,000
tag values against today's low-cardinality workload in the same run, and its RSS over a
steady run at that cardinality.

Run: .venv/bin/python bench/worker_cardinality.py [--events 150000] [--rounds 3] [--minutes 2]
     [--rate 4000] [--bootstrap host:port] [--redis redis://...] [--skip-throughput]
     [--soak-workload high|users_tags|both] [--no-users-tags]
     [--soak-env GENPULSE_DEDUP_HORIZON_S=0] [--worker-env GENPULSE_CHANGELOG_COMPRESSION=none]

Throughput: topics are filled beforehand with the same seeded demo sessions
(tests/streams/workload.py), (a) as bench/worker_throughput.py sends them (one service, a few
hundred users, no tags), (b) rewritten to 3 services, 2 environments, users drawn from
100,000 and a `feature` tag from 1,000 values, and (c) `users_tags`: the same users and tags
as (b) with service and environment as in (a) (one service, no environment), so (c)/(a) is
what users and tag values alone cost (the issue's sentence names only those) and (b)/(c) what
the 3 x 2 service/environment cells add. A fresh `genpulse worker` drains each, timed from
its first committed offset to the last (Kafka's record of progress), --rounds rounds, the
order rotated each round (each side first, second and third once in 3 rounds); `ratio` is the
median of the rounds' (b)/(a) (the figure kept from before (c) was added), `users_tags_ratio`
of (c)/(a), `cells_ratio` of (b)/(c). Goal: >= 0.8. Memory: then --minutes of load at --rate
events/s, event times now (minutes roll over, tables fill to K and stop growing), at the
cardinality of (b) (`--soak-workload high`, the default), of (c) or both in turn; VmRSS of
the worker sampled every 10 s; the figure is the last sample against the one at minute 2 (or
the first after 60 s for shorter runs), and the same with the medians of those minutes
(single samples swing with the poll in progress). Goal: within 10 %. The last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers, bench

from bench.worker_soak import rss_mb
from bench.worker_throughput import run_worker
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.streams.helpers import WorkerProcess, produce
from tests.streams.workload import session_events, workload

USERS = 100_000
TAG_VALUES = 1_000
SERVICES = ("generator", "editor", "exporter")
ENVIRONMENTS = ("prod", "staging")


def high_cardinality(
    events: list[dict[str, Any]], seed: int, cells: bool = True
) -> list[dict[str, Any]]:
    """The same events with each session's user, service, environment and tag redrawn;
    `cells=False`: the same users and tags (same seed, same draws), service and environment
    left as they were."""
    rng = random.Random(seed)
    per_session: dict[str, dict[str, Any]] = {}
    out = []
    for e in events:
        dims = per_session.get(e["session_id"])
        if dims is None:
            dims = per_session[e["session_id"]] = draw(rng, cells)
        out.append({**e, **dims})
    return out


def draw(rng: random.Random, cells: bool = True) -> dict[str, Any]:
    """One session's dimensions; `cells=False` draws the same figures (so the same users and
    tags follow from a seed) and leaves out service and environment."""
    dims = {
        "user_id": f"user-{rng.randrange(USERS)}",
        "service": rng.choice(SERVICES),
        "environment": rng.choice(ENVIRONMENTS),
        "tags": {"feature": f"f{rng.randrange(TAG_VALUES)}"},
    }
    if not cells:
        del dims["service"], dims["environment"]
    return dims


async def fresh_topology(bootstrap: str, redis: str, name: str) -> WorkerSettings:
    """Settings on a prefix of their own, topics created: a worker there starts from nothing
    (a reused prefix would restore another run's position from its changelogs)."""
    unique = uuid.uuid4().hex[:8]
    s = WorkerSettings(
        kafka_bootstrap=bootstrap,
        redis_url=redis,
        topic_prefix=f"{name}-{unique}",
        app_id=f"{name}-{unique}",
    )
    await ensure_topics(s)
    return s


def orders(names: tuple[str, ...], rounds: int) -> list[tuple[str, ...]]:
    """Each round's order: with two sides they alternate; with more, each round rotates the
    last one by one place (and the next cycle runs reversed), so over len(names) rounds every
    side runs once in every position."""
    out: list[tuple[str, ...]] = []
    for n in range(rounds):
        if len(names) <= 2:
            out.append(names if n % 2 == 0 else names[::-1])
            continue
        shift = n % len(names)
        order = names[shift:] + names[:shift]
        out.append(order if (n // len(names)) % 2 == 0 else order[::-1])
    return out


async def throughput(
    bootstrap: str,
    redis: str,
    events: int,
    tmp: Path,
    env: dict[str, str],
    rounds: int,
    users_tags: bool = True,
) -> dict[str, list[float]]:
    """events/s of each workload per round; the order changes each round (`orders`), so a
    load change on this shared machine does not always hit the same side."""
    base = workload(1, events, int(time.time() * 1000) - 30 * 60_000, 25 * 60_000)
    workloads = {"low": base, "high": high_cardinality(base, 2)}
    if users_tags:
        workloads["users_tags"] = high_cardinality(base, 2, cells=False)
    rates: dict[str, list[float]] = {name: [] for name in workloads}
    for n, order in enumerate(orders(tuple(workloads), rounds)):
        for name in order:
            s = await fresh_topology(bootstrap, redis, "card")
            total = await produce(
                bootstrap,
                s.topic("events"),
                [(e["session_id"].encode(), orjson.dumps(e)) for e in workloads[name]],
            )
            (tmp / f"{name}-{n}").mkdir()
            got = await run_worker(s, tmp / f"{name}-{n}", total, **env)
            rates[name].append(got["events"] / got["seconds"])
            print(f"round {n + 1} {name} cardinality: {rates[name][-1]:,.0f} events/s", flush=True)
    return rates


async def memory(
    bootstrap: str,
    redis: str,
    minutes: float,
    rate: float,
    tmp: Path,
    env: dict[str, str],
    cells: bool = True,
) -> dict:
    """The soak at the cardinality of (b), or (`cells=False`) of (c)."""
    s = await fresh_topology(bootstrap, redis, "cardsoak")
    name = "soak" if cells else "soak-users-tags"
    worker = WorkerProcess(s, tmp, name, **env).start()
    assert worker.proc is not None
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    rng = random.Random(3)
    samples: list[tuple[float, float]] = []
    began = time.monotonic()
    next_sample = 10.0
    sent = n = 0
    try:
        while (at := time.monotonic() - began) < minutes * 60:
            due = int(at * rate)
            while sent < due:
                n += 1
                dims = draw(rng, cells)
                for e in session_events(rng, f"c{n}", dims["user_id"], int(time.time() * 1000)):
                    e.update(dims)
                    key = e["session_id"].encode()
                    await producer.send(s.topic("events"), orjson.dumps(e), key=key)
                    sent += 1
            if at >= next_sample:
                next_sample += 10
                if not worker.alive():
                    raise RuntimeError(worker.log_tail())
                samples.append((at, rss_mb(worker.proc.pid)))
                print(f"{at:6.0f}s {name} rss {samples[-1][1]:.1f} MB, {sent} events", flush=True)
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()
        worker.stop()
    base_at = 120 if minutes >= 3 else 60
    baseline = min(samples, key=lambda x: abs(x[0] - base_at))
    # single samples swing by ±10 MB with the poll in progress: medians of the minute
    # around the baseline and of the last minute say the same without the swing
    around = statistics.median(r for at, r in samples if abs(at - base_at) <= 30)
    last = statistics.median(r for at, r in samples if at >= samples[-1][0] - 60)
    return {
        "rss_end_mb": round(samples[-1][1], 1),
        "baseline_rss_mb": round(baseline[1], 1),
        "baseline_at_s": round(baseline[0]),
        "rss_ratio": round(samples[-1][1] / baseline[1], 3),
        "median_rss_baseline_minute_mb": round(around, 1),
        "median_rss_last_minute_mb": round(last, 1),
        "median_rss_ratio": round(last / around, 3),
        "peak_rss_mb": round(max(r for _, r in samples), 1),
        "soak_events": sent,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=4000.0)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--redis", default=os.environ.get("GENPULSE_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--soak-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the soak's worker, e.g. GENPULSE_DEDUP_HORIZON_S=0 (repeatable)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of every worker, e.g. GENPULSE_CHANGELOG_COMPRESSION=none (repeatable)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="throughput pairs, alternating")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--no-users-tags",
        action="store_true",
        help="throughput of (a) and (b) only, without the users-and-tags variant (c)",
    )
    parser.add_argument(
        "--soak-workload",
        choices=("high", "users_tags", "both"),
        default="high",
        help="the soak's cardinality: (b), (c) or both in turn (each --minutes long)",
    )
    args = parser.parse_args()
    if 0 < args.minutes < 1:
        parser.error("--minutes: 0 (throughput only) or at least 1 (RSS is compared at minute 1)")
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    soak_env = {**worker_env, **dict(item.split("=", 1) for item in args.soak_env)}
    with tempfile.TemporaryDirectory() as tmp:
        rates: dict[str, list[float]] = {"low": [], "high": [], "users_tags": []}
        if not args.skip_throughput:
            rates = await throughput(
                args.bootstrap,
                args.redis,
                args.events,
                Path(tmp),
                worker_env,
                args.rounds,
                users_tags=not args.no_users_tags,
            )
        low, high, users_tags = rates["low"], rates["high"], rates.get("users_tags", [])
        ratios = [h / lo for h, lo in zip(high, low, strict=True)]
        ut_ratios = [u / lo for u, lo in zip(users_tags, low, strict=True)]
        cell_ratios = [h / u for h, u in zip(high, users_tags, strict=True)]
        mem: dict[str, Any] = {}
        if args.minutes > 0:  # 0: the throughput part only
            for cells in {"high": (True,), "users_tags": (False,), "both": (True, False)}[
                args.soak_workload
            ]:
                got = await memory(
                    args.bootstrap, args.redis, args.minutes, args.rate, Path(tmp), soak_env, cells
                )
                if cells:  # the keys the figure always had
                    mem.update(got)
                else:
                    mem["users_tags_soak"] = got
    print(
        json.dumps(
            {
                "bench": "worker_cardinality",
                "events": args.events,
                "users": USERS,
                "tag_values": TAG_VALUES,
                "high_cardinality_events_per_s": [round(r) for r in high],
                "baseline_low_cardinality_events_per_s": [round(r) for r in low],
                "round_ratios": [round(r, 3) for r in ratios],
                "best_over_best": round(max(high) / max(low), 3) if low else None,
                "ratio": round(statistics.median(ratios), 3) if ratios else None,
                "users_tags_events_per_s": [round(r) for r in users_tags],
                "users_tags_round_ratios": [round(r, 3) for r in ut_ratios],
                "users_tags_ratio": round(statistics.median(ut_ratios), 3) if ut_ratios else None,
                "cells_round_ratios": [round(r, 3) for r in cell_ratios],
                "cells_ratio": round(statistics.median(cell_ratios), 3) if cell_ratios else None,
                "worker_env": worker_env,
                "soak_env": soak_env,
                "minutes": args.minutes,
                "rate_events_per_s": args.rate,
                "soak_workload": args.soak_workload if args.minutes > 0 else None,
                **mem,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

"""The worker at high cardinality (issue 14): events/s with 100,000 distinct users and 1,000
tag values against today's low-cardinality workload in the same run, and its RSS over a
steady run at that cardinality.

Run: .venv/bin/python bench/worker_cardinality.py [--events 150000] [--rounds 3] [--minutes 2]
     [--rate 4000] [--bootstrap host:port] [--redis redis://...] [--skip-throughput]
     [--soak-env GENPULSE_DEDUP_HORIZON_S=0] [--worker-env GENPULSE_CHANGELOG_COMPRESSION=none]

Throughput: two topics are filled beforehand with the same seeded demo sessions
(tests/streams/workload.py), (a) as bench/worker_throughput.py sends them (one service, a few
hundred users, no tags) and (b) rewritten to 3 services, 2 environments, users drawn from
100,000 and a `feature` tag from 1,000 values; a fresh `genpulse worker` drains each, timed
from its first committed offset to the last (Kafka's record of progress), --rounds pairs in
alternating order; the figure is the median of the pairs' (b)/(a). Goal: >= 0.8. Memory:
then --minutes of load at --rate events/s, event times now (minutes roll over, tables fill
to K and stop growing), at the high cardinality; VmRSS of the worker sampled every 10 s; the
figure is the last sample against the one at minute 2 (or the first after 60 s for shorter
runs), and the same with the medians of those minutes (single samples swing with the poll in
progress). Goal: within 10 %. The last line is one JSON object.
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


def high_cardinality(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The same events with each session's user, service, environment and tag redrawn."""
    rng = random.Random(seed)
    per_session: dict[str, dict[str, Any]] = {}
    out = []
    for e in events:
        dims = per_session.get(e["session_id"])
        if dims is None:
            dims = per_session[e["session_id"]] = draw(rng)
        out.append({**e, **dims})
    return out


def draw(rng: random.Random) -> dict[str, Any]:
    return {
        "user_id": f"user-{rng.randrange(USERS)}",
        "service": rng.choice(SERVICES),
        "environment": rng.choice(ENVIRONMENTS),
        "tags": {"feature": f"f{rng.randrange(TAG_VALUES)}"},
    }


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


async def throughput(
    bootstrap: str, redis: str, events: int, tmp: Path, env: dict[str, str], rounds: int
) -> dict[str, list[float]]:
    """events/s of each workload per round; the order alternates, so a load change on this
    shared machine does not always hit the same side."""
    base = workload(1, events, int(time.time() * 1000) - 30 * 60_000, 25 * 60_000)
    workloads = {"low": base, "high": high_cardinality(base, 2)}
    rates: dict[str, list[float]] = {"low": [], "high": []}
    for n in range(rounds):
        for name in ("low", "high") if n % 2 == 0 else ("high", "low"):
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
    bootstrap: str, redis: str, minutes: float, rate: float, tmp: Path, env: dict[str, str]
) -> dict:
    s = await fresh_topology(bootstrap, redis, "cardsoak")
    worker = WorkerProcess(s, tmp, "soak", **env).start()
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
                dims = draw(rng)
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
                print(f"{at:6.0f}s rss {samples[-1][1]:.1f} MB, {sent} events", flush=True)
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
    args = parser.parse_args()
    if 0 < args.minutes < 1:
        parser.error("--minutes: 0 (throughput only) or at least 1 (RSS is compared at minute 1)")
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    soak_env = {**worker_env, **dict(item.split("=", 1) for item in args.soak_env)}
    with tempfile.TemporaryDirectory() as tmp:
        rates: dict[str, list[float]] = {"low": [], "high": []}
        if not args.skip_throughput:
            rates = await throughput(
                args.bootstrap, args.redis, args.events, Path(tmp), worker_env, args.rounds
            )
        low, high = rates["low"], rates["high"]
        ratios = [h / lo for h, lo in zip(high, low, strict=True)]
        mem = {}
        if args.minutes > 0:  # 0: the throughput part only
            mem = await memory(
                args.bootstrap, args.redis, args.minutes, args.rate, Path(tmp), soak_env
            )
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
                "worker_env": worker_env,
                "soak_env": soak_env,
                "minutes": args.minutes,
                "rate_events_per_s": args.rate,
                **mem,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

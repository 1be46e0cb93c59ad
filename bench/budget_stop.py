"""How fast a crossed budget stops 8 concurrent SDK clients, and by how much they overshoot.

Run: .venv/bin/python bench/budget_stop.py [--runs 5] [--clients 8] [--rate 50]

Starts Kafka, Redis (or uses GENPULSE_KAFKA_BOOTSTRAP / GENPULSE_REDIS_URL) and a worker.
Each run sets a $1 daily budget on a fresh scope `user:run-<n>`; 8 GenPulse clients
(threads, each following budget-state) call record_model_call for that user at --rate
calls/s each until their own `budget.allows()` answers False. From every call's event time
the run finds the call that crossed 100 %, then measures for each client the time from
that event time to its first False, and the overshoot (spend after the crossing).
One warm-up run (--warmup) goes first and is not counted: a just-started worker's first
batches are slower. Baseline, same run: from the crossing call's event time to its event
being read by a plain consumer of the events topic (the SDK flush + Kafka share, no
worker). Also printed: when the roll-up reaching 100 % and the stopped budget-state appear.
The last line is JSON: stop p50/p99, baseline p50/p99, their ratio, overshoot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers

from producers import GenPulse
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.services import kafka_service, redis_service
from tests.streams.helpers import WorkerProcess, wait_for

BUDGET_USD = "1"
BUDGET_NANOS = 1_000_000_000
MODEL = "claude-3-5-haiku-20241022"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def client_loop(
    pulse: GenPulse, scope: str, user: str, rate: float, calls: list[tuple[float, int, str]],
    stopped: list[float], go: threading.Event,
) -> None:  # fmt: skip
    """Call until allows() says no; note every call's (event time, cost, session)."""
    go.wait()
    pause = 1.0 / rate
    n = 0
    while time.time() < go.deadline:  # type: ignore[attr-defined]
        if not pulse.budget.allows(scope):
            stopped.append(time.time())
            return
        session = f"{user}-{id(pulse)}-{n}"
        t = time.time()
        cost = pulse.costs.record_model_call(MODEL, 400, 200, user_id=user, session_id=session)
        calls.append((t, 0 if cost is None else int(cost * BUDGET_NANOS), session))
        n += 1
        time.sleep(pause)


async def one_run(
    n: int, s: WorkerSettings, clients: list[GenPulse], rate: float
) -> dict[str, float]:
    user = f"run-{n}-{uuid.uuid4().hex[:6]}"
    scope = f"user:{user}"
    clients[0].costs.set_budget(BUDGET_USD, scope)
    clients[0].flush()
    await asyncio.sleep(1.0)  # the controller reads the control record
    arrived: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        s.topic("events"),
        s.topic("budget-state"),
        s.internal_topic("rollup"),
        bootstrap_servers=s.kafka_bootstrap,
        auto_offset_reset="latest",
    )
    await consumer.start()
    await consumer.getmany(timeout_ms=500)
    calls: list[list[tuple[float, int, str]]] = [[] for _ in clients]
    stopped: list[list[float]] = [[] for _ in clients]
    go = threading.Event()
    go.deadline = time.time() + 30  # type: ignore[attr-defined]
    threads = [
        threading.Thread(target=client_loop, args=(c, scope, user, rate, calls[i], stopped[i], go))
        for i, c in enumerate(clients)
    ]
    for t in threads:
        t.start()
    go.set()
    rolled = 0
    end = time.time() + 3600
    while time.time() < end:
        if end > time.time() + 3 and not any(t.is_alive() for t in threads):
            end = time.time() + 3
        got = await consumer.getmany(timeout_ms=20)
        now = time.time()
        for tp, records in got.items():
            for r in records:
                if tp.topic == s.topic("events"):
                    arrived.setdefault(orjson.loads(r.value)["session_id"], now)
                elif tp.topic == s.internal_topic("rollup"):
                    spend = orjson.loads(r.value)["spend"]
                    rolled += sum(nanos for name, _, nanos in spend if name == scope)
                    if rolled >= BUDGET_NANOS:
                        arrived.setdefault("rolled", now)
                elif r.key == scope.encode() and orjson.loads(r.value)["state"] == "stopped":
                    arrived.setdefault("stopped", now)
    await consumer.stop()
    every = sorted(c for per in calls for c in per)
    total, crossing, crossing_session = 0, None, ""
    for t, cost, session in every:
        total += cost
        if crossing is None and total >= BUDGET_NANOS:
            crossing, crossing_session = t, session
    assert crossing is not None and all(stopped), "a client never stopped"
    lags = [per[0] - crossing for per in stopped]
    spent = sum(cost for _, cost, _ in every)
    return {
        "stop_p50_s": pct(lags, 0.5),
        "stop_max_s": max(lags),
        "transport_s": arrived.get(crossing_session, float("nan")) - crossing,
        "published_s": arrived.get("stopped", float("nan")) - crossing,
        "aggregated_s": arrived.get("rolled", float("nan")) - crossing,
        "overshoot_usd": (spent - BUDGET_NANOS) / 1e9,
        "spend_per_s_usd": len(clients) * rate * (every[0][1] / 1e9),
        "lags": lags,  # type: ignore[dict-item]
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=50.0, help="calls/s per client")
    parser.add_argument("--flush-interval", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=1, help="runs first, not counted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        bootstrap = stack.enter_context(kafka_service(Path(tmp)))
        redis_url = stack.enter_context(redis_service(Path(tmp)))
        unique = uuid.uuid4().hex[:8]
        s = WorkerSettings(
            kafka_bootstrap=bootstrap, redis_url=redis_url,
            topic_prefix=f"stop-{unique}", app_id=f"stop-{unique}",
        )  # fmt: skip
        await ensure_topics(s)
        worker = WorkerProcess(s, Path(tmp), "stop").start()
        clients = [
            GenPulse(
                service=f"stop-bench-{i}",
                bootstrap_servers=bootstrap,
                topic_prefix=s.topic_prefix,
                flush_interval_s=args.flush_interval,
            )
            for i in range(args.clients)
        ]
        try:
            clients[0].costs.set_budget("1000", "user:warmup")
            clients[0].costs.record_model_call(MODEL, 10, 10, user_id="warmup")
            clients[0].flush()

            async def warm() -> bool:
                return all(c.budget.status("user:warmup") is not None for c in clients)

            await wait_for(warm, 120, "budget-state seen by every client", [worker])
            for n in range(args.warmup):  # a fresh worker's first batches are slower
                await one_run(-1 - n, s, clients, args.rate)
            runs = [await one_run(n, s, clients, args.rate) for n in range(args.runs)]
        finally:
            for c in clients:
                c.close(2)
            worker.stop()
    lags = [lag for r in runs for lag in r["lags"]]  # type: ignore[union-attr]
    transport = [r["transport_s"] for r in runs]
    overshoot = [r["overshoot_usd"] for r in runs]
    for i, r in enumerate(runs):
        print(
            f"run {i}: stop p50 {r['stop_p50_s']:.3f}s max {r['stop_max_s']:.3f}s, "
            f"transport {r['transport_s']:.3f}s, rolled up {r['aggregated_s']:.3f}s, "
            f"stopped state published "
            f"{r['published_s']:.3f}s, overshoot ${r['overshoot_usd']:.4f} "
            f"(spend rate ${r['spend_per_s_usd']:.3f}/s)"
        )
    figures = {
        "runs": len(runs),
        "clients": args.clients,
        "spend_per_s_usd": round(runs[0]["spend_per_s_usd"], 4),
        "stop_p50_s": round(pct(lags, 0.5), 3),
        "stop_p99_s": round(pct(lags, 0.99), 3),
        "aggregated_p50_s": round(pct([r["aggregated_s"] for r in runs], 0.5), 3),
        "published_p50_s": round(pct([r["published_s"] for r in runs], 0.5), 3),
        "baseline_transport_p50_s": round(pct(transport, 0.5), 3),
        "baseline_transport_max_s": round(max(transport), 3),
        "ratio_stop_p99_to_transport_max": round(pct(lags, 0.99) / max(transport), 2),
        "overshoot_usd_max": round(max(overshoot), 4),
        "overshoot_share_max": round(max(overshoot) / float(BUDGET_USD), 4),
        "flush_interval_s": args.flush_interval,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    os.environ.setdefault("GENPULSE_LOG_LEVEL", "WARNING")
    asyncio.run(main())

"""Worker throughput with every sink's endpoint down vs no sinks at all, in the same run.

Run: .venv/bin/python bench/worker_sinks_down.py [--events 300000] [--rounds 3]

Issue 7 asks that dead Datadog / GA4 / webhook endpoints never slow the aggregation. The
sinks run in their own process (`genpulse sinks`), reading the same topics as the worker
with their own consumer groups, so a dead endpoint can only cost the worker CPU time. Each
round fills a fresh topic, then drains it with bench/worker_throughput.py's timing (the
worker's committed offsets), once alone (baseline) and once beside `genpulse sinks` with
every sink on and pointed at closed ports, tiny queues and slow retries (the worst case),
with its production CPU priority, draining the same backlog (GENPULSE_SINKS_START=earliest)
at the same time: paused once its feeds are ready, resumed at the worker's first commit.
Rounds alternate the order; the figures are medians. Also printed: the drops the sinks
counted in their health hash, and how many seconds after the worker they had read the
whole topic too (idle priority lets them lag in a burst).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from genpulse.devservices import free_port
from streams.settings import WorkerSettings
from streams.sinks import read_health

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ and the tests' helpers

from bench.sinks_overhead import sinks_env
from bench.worker_throughput import fill_topic, run_worker
from tests.sinks.harness import feeds_ready

ROOT = Path(__file__).resolve().parents[1]


async def wait_for_feeds(redis: aioredis.Redis, prefix: str) -> None:
    """Until every feed of the sinks process got its partitions (`ready_ms`)."""
    deadline = time.monotonic() + 60
    while not feeds_ready(await read_health(redis, prefix)):
        if time.monotonic() > deadline:
            raise RuntimeError("the sinks' feeds were not ready in 60 s")
        await asyncio.sleep(0.1)


async def catch_up_s(redis: aioredis.Redis, prefix: str, total: int) -> float:
    """Seconds after the worker finished until the sinks had read every event too (they
    run at idle priority, so they may lag while the worker drains)."""
    began = time.monotonic()
    while time.monotonic() - began < 300:
        read = (await read_health(redis, prefix)).get("feed:events", {}).get("sent", 0)
        if read >= total:
            return time.monotonic() - began
        await asyncio.sleep(0.1)
    return float("inf")


async def drain_rate(args: argparse.Namespace, with_sinks: bool) -> tuple[float, int, float]:
    """Events/s of one worker draining a freshly filled topic; the drops the sinks counted
    and how long after the worker they had read the topic too."""
    unique = uuid.uuid4().hex[:8]
    settings = WorkerSettings(
        kafka_bootstrap=args.bootstrap,
        redis_url=args.redis,
        topic_prefix=f"bench-{unique}",
        app_id=f"bench-{unique}",
    )
    total = await fill_topic(settings, args.events)
    sinks = None
    if with_sinks:
        dead_http = f"http://127.0.0.1:{free_port()}"
        env = sinks_env(settings.topic_prefix, dead_http, free_port(), down=True)
        env |= {"GENPULSE_KAFKA_BOOTSTRAP": args.bootstrap, "GENPULSE_REDIS_URL": args.redis}
        sinks = subprocess.Popen(
            [sys.executable, "-m", "genpulse.cli", "sinks", "--log-level", "error"],
            env=env,
            cwd=ROOT,
        )
    redis = aioredis.from_url(args.redis)
    try:
        resume = None
        if sinks is not None:
            # The sinks must drain the backlog while the worker does, not before it: once
            # their feeds are ready they are paused (SIGSTOP) through the worker's start-up
            # (shorter than their 10 s session) and resumed at the worker's first commit.
            await wait_for_feeds(redis, settings.topic_prefix)
            os.kill(sinks.pid, signal.SIGSTOP)
            resume = functools.partial(os.kill, sinks.pid, signal.SIGCONT)
        with tempfile.TemporaryDirectory() as tmp:
            result = await run_worker(settings, Path(tmp), total, on_first_commit=resume)
        dropped, lag_s = 0, 0.0
        if sinks is not None:
            lag_s = await catch_up_s(redis, settings.topic_prefix, total)
            health = await read_health(redis, settings.topic_prefix)
            dropped = sum(int(h.get("dropped", 0)) for h in health.values())
        return result["events"] / result["seconds"], dropped, lag_s
    finally:
        if sinks is not None:
            os.kill(sinks.pid, signal.SIGCONT)
            sinks.terminate()
            sinks.wait(timeout=60)
        keys = [k async for k in redis.scan_iter(f"{settings.topic_prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--redis", default=os.environ.get("GENPULSE_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    alone: list[float] = []
    beside: list[float] = []
    drops: list[int] = []
    lags: list[float] = []
    for n in range(args.rounds):
        for with_sinks in (n % 2 == 1, n % 2 == 0):
            rate, dropped, lag_s = await drain_rate(args, with_sinks)
            (beside if with_sinks else alone).append(rate)
            if with_sinks:
                drops.append(dropped)
                lags.append(round(lag_s, 1))
            label = "sinks down" if with_sinks else "sinks off "
            print(
                f"round {n + 1} {label}: {rate:,.0f} events/s, dropped {dropped}, "
                f"sinks done {lag_s:.1f} s after the worker",
                flush=True,
            )
    down, off = statistics.median(beside), statistics.median(alone)
    print(
        json.dumps(
            {
                "bench": "worker_sinks_down",
                "events_per_s_sinks_down": round(down),
                "baseline_events_per_s_sinks_off": round(off),
                "ratio": round(down / off, 3),
                "sinks_dropped": drops,
                "sinks_done_s_after_worker": lags,
                "events": args.events,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

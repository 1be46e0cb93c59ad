"""Latency from `track()` in a service to the event being visible in the Redis snapshot.

Run: .venv/bin/python bench/e2e_latency.py [--seconds 30] [--rate 5000]

A GenPulse client (flush interval 100 ms) reports the demo workload at --rate events/s
from a thread; every 100 ms the main thread tracks a marker (`error_occurred` with a unique
`error_type`) and notes the time. The worker (`genpulse worker` subprocess) aggregates
everything; a poller reads `MetricsReader.recent_errors()` every 20 ms and notes when each
marker appears. Baseline, same run: when the same marker reaches a plain aiokafka consumer
of the events topic (the SDK + Kafka share of the latency, no worker, no Redis).
Target (issue 4): p95 <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from genpulse.demo.driver import drive
from producers import GenPulse
from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from streams.topics import ensure_topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers

from tests.streams.helpers import WorkerProcess, wait_for


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=5000.0)
    args = parser.parse_args()
    unique = uuid.uuid4().hex[:8]
    s = WorkerSettings(
        kafka_bootstrap=os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        redis_url=os.environ.get("GENPULSE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        topic_prefix=f"lat-{unique}",
        app_id=f"lat-{unique}",
    )
    await ensure_topics(s)
    redis = aioredis.from_url(s.redis_url)
    reader = MetricsReader(redis, s.key_prefix)
    sent: dict[str, float] = {}
    seen_redis: dict[str, float] = {}
    seen_kafka: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        worker = WorkerProcess(s, Path(tmp), "lat").start()
        pulse = GenPulse(
            service="latency-bench",
            bootstrap_servers=s.kafka_bootstrap,
            topic_prefix=s.topic_prefix,
            flush_interval_s=0.1,
        )
        try:
            pulse.events.track("generation_started", session_id="warmup")

            async def until_ready() -> bool:
                return (await reader.summary(0, 2**42))["events"] > 0

            await wait_for(until_ready, 120, "first event visible", [worker])
            consumer = AIOKafkaConsumer(
                s.topic("events"), bootstrap_servers=s.kafka_bootstrap, auto_offset_reset="latest"
            )
            await consumer.start()
            stop = threading.Event()
            load = threading.Thread(
                target=lambda: drive(pulse, seed=3, duration_s=args.seconds + 3, rate=args.rate),
                daemon=True,
            )
            load.start()

            async def kafka_side() -> None:
                while not stop.is_set():
                    got = await consumer.getmany(timeout_ms=50)
                    now = time.monotonic()
                    for records in got.values():
                        for r in records:
                            if b"marker-" in r.value:
                                kind = orjson.loads(r.value)["data"]["error_type"]
                                seen_kafka.setdefault(kind, now)

            async def redis_side() -> None:
                while not stop.is_set():
                    for e in await reader.recent_errors(100):
                        if e["type"].startswith("marker-"):
                            seen_redis.setdefault(e["type"], time.monotonic())
                    await asyncio.sleep(0.02)

            tasks = [asyncio.ensure_future(kafka_side()), asyncio.ensure_future(redis_side())]
            began = time.monotonic()
            i = 0
            while time.monotonic() - began < args.seconds:
                marker = f"marker-{i}"
                sent[marker] = time.monotonic()
                pulse.events.track(
                    "error_occurred", {"error_type": marker}, session_id=f"m-{i % 50}"
                )
                i += 1
                await asyncio.sleep(0.1)
            await asyncio.sleep(5)
            stop.set()
            await asyncio.gather(*tasks)
            await consumer.stop()
            load.join(timeout=30)
        finally:
            pulse.close()
            worker.stop()
            await redis.aclose()
    e2e = [(seen_redis[m] - t) * 1000 for m, t in sent.items() if m in seen_redis]
    base = [(seen_kafka[m] - t) * 1000 for m, t in sent.items() if m in seen_kafka]
    print(f"markers {len(sent)}: visible in Redis {len(e2e)}, at a Kafka consumer {len(base)}")
    print(
        json.dumps(
            {
                "bench": "e2e_latency",
                "rate_events_per_s": args.rate,
                "p50_ms": round(statistics.median(e2e)),
                "p95_ms": round(pct(e2e, 0.95)),
                "baseline_kafka_consumer_p50_ms": round(statistics.median(base)),
                "baseline_kafka_consumer_p95_ms": round(pct(base, 0.95)),
                "ratio_p95": round(pct(e2e, 0.95) / pct(base, 0.95), 2),
                "markers_seen": len(e2e),
                "markers_sent": len(sent),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Events/s the sinks process consumes with every endpoint down vs every endpoint up.

Run: .venv/bin/python bench/sinks_overhead.py [--events 100000] [--rounds 2]
(Kafka at GENPULSE_KAFKA_BOOTSTRAP, Redis at GENPULSE_REDIS_URL; defaults 127.0.0.1.)

The same events go to two private topic prefixes. `genpulse sinks` runs as its own process
with every sink on (DogStatsD, Datadog series and events, GA4, two webhooks), once against
live local endpoints (a child process answering 202 and draining UDP: the baseline) and once
against ports where nothing listens, with slow retries and small queues. The figure is the
events feed's rate, read from the health hash: first record seen to last record read.
Dead endpoints must not slow consumption (ratio ~1 or above); the drops are reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from genpulse.devservices.ports import free_port
from producers.contract import Event, encode_event, new_event_id
from producers.events import EventType
from streams.sinks.health import read_health

ROOT = Path(__file__).resolve().parents[1]

ENDPOINTS = """
import asyncio, socket, sys
from aiohttp import web

async def main(http_port, udp_port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", udp_port))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    loop.add_reader(sock.fileno(), lambda: sock.recv(65536))
    async def ok(request):
        await request.read()
        return web.json_response({}, status=202)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


def workload(count: int) -> list[Event]:
    """Sessions of: started, 2 phases, first byte, a model call, completed, quality, approval."""
    now = int(time.time() * 1000)
    steps: list[tuple[EventType, dict[str, Any]]] = [
        (EventType.GENERATION_STARTED, {}),
        (EventType.PHASE_COMPLETED, {"phase": "extraction", "duration_ms": 120.0}),
        (EventType.PHASE_COMPLETED, {"phase": "analysis", "duration_ms": 830.0}),
        (EventType.FIRST_BYTE, {"elapsed_ms": 210.0}),
        (
            EventType.MODEL_CALLED,
            {"model": "claude-sonnet", "tier": "sonnet", "input_tokens": 900,
             "output_tokens": 300, "cost_nanousd": 7_200_000},
        ),
        (EventType.GENERATION_COMPLETED, {"duration_ms": 4100.0}),
        (EventType.QUALITY_SCORED, {"score": 84.0}),
        (EventType.UVP_APPROVED, {"variant": "a"}),
    ]  # fmt: skip
    events = []
    for i in range(count):
        kind, data = steps[i % len(steps)]
        session = f"s-{i // len(steps)}"
        events.append(
            Event(
                type=kind,
                event_id=new_event_id(),
                timestamp=now,
                session_id=session,
                user_id=f"u-{(i // len(steps)) % 50}",
                service="uvp-generator",
                data=data,
            )
        )
    return events


async def prepare(bootstrap: str, prefix: str, records: list[tuple[bytes, bytes]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [f"{prefix}.{name}" for name in ("events", "metrics", "alerts", "budget-state")]
        await admin.create_topics([NewTopic(t, 3, 1) for t in topics])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send(f"{prefix}.events", value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def sinks_env(prefix: str, http: str, udp_port: int, down: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "GENPULSE_TOPIC_PREFIX": prefix,
        "GENPULSE_SINKS_START": "earliest",
        "GENPULSE_SINKS_HEALTH_S": "0.1",
        "GENPULSE_DOGSTATSD_ENABLED": "1",
        "GENPULSE_DOGSTATSD_PORT": str(udp_port),
        "GENPULSE_DATADOG_API_KEY": "bench-key",
        "GENPULSE_DATADOG_API_URL": http,
        "GENPULSE_DATADOG_SERIES_ENABLED": "1",
        "GENPULSE_DATADOG_EVENTS_ENABLED": "1",
        "GENPULSE_DATADOG_FLUSH_S": "1",
        "GENPULSE_DATADOG_QUALITY_WAIT_S": "0.5",
        "GENPULSE_GA4_MEASUREMENT_ID": "G-BENCH",
        "GENPULSE_GA4_API_SECRET": "bench-secret",
        "GENPULSE_GA4_ENDPOINT": http,
        "GENPULSE_WEBHOOK_SLACK_URLS": f"{http}/slack",
        "GENPULSE_WEBHOOK_PLAIN_URLS": f"{http}/plain",
        "GENPULSE_SINKS_AGGREGATES": "0",
    }
    if down:  # small queues and slow retries: the worst case for a design that would wait
        env |= {"GENPULSE_SINKS_QUEUE_SIZE": "100", "GENPULSE_SINKS_BACKOFF_S": "2"}
    return env


async def consume_rate(
    redis: aioredis.Redis, prefix: str, env: dict[str, str], total: int
) -> dict[str, Any]:
    """Run `genpulse sinks` until its events feed has read `total` records; events/s."""
    process = subprocess.Popen(
        [sys.executable, "-m", "genpulse.cli", "sinks", "--log-level", "error"], env=env, cwd=ROOT
    )
    first_seen = last_count = 0.0
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            feed = (await read_health(redis, prefix)).get("feed:events", {})
            count = feed.get("sent", 0)
            if count and not first_seen:
                first_seen = time.monotonic()
                last_count = count
            if count >= total:
                elapsed = time.monotonic() - first_seen
                health = await read_health(redis, prefix)
                break
            await asyncio.sleep(0.02)
        else:
            raise SystemExit(f"{prefix}: the sinks did not read all {total} events in 300 s")
    finally:
        process.terminate()
        process.wait(timeout=30)
        await redis.delete(f"{prefix}:sinks:health")
    counted = total - last_count  # records read after the first health tick
    sinks = {k: v for k, v in health.items() if not k.startswith("feed:")}
    return {
        "events_per_s": counted / elapsed if elapsed > 0 else float("inf"),
        "sent": sum(v["sent"] for v in sinks.values()),
        "dropped": sum(v["dropped"] for v in sinks.values()),
        "failed": sum(v["failed"] for v in sinks.values()),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="up/down pairs, order alternating")
    args = parser.parse_args()
    bootstrap = os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    redis = aioredis.from_url(os.environ.get("GENPULSE_REDIS_URL", "redis://127.0.0.1:6379/0"))
    records = [(e.session_id.encode(), encode_event(e)) for e in workload(args.events)]
    run = uuid.uuid4().hex[:8]
    cases = []
    for n in range(args.rounds):
        pair = [("up", f"bench-sinks-{run}-{n}-up"), ("down", f"bench-sinks-{run}-{n}-down")]
        cases += pair if n % 2 == 0 else pair[::-1]
    for _, prefix in cases:
        await prepare(bootstrap, prefix, records)

    http_port, udp_port = free_port(), free_port()
    live = f"http://127.0.0.1:{http_port}"
    dead = f"http://127.0.0.1:{free_port()}"
    endpoints = subprocess.Popen(
        [sys.executable, "-c", ENDPOINTS, str(http_port), str(udp_port)], stdout=subprocess.PIPE
    )
    results: dict[str, list[dict[str, Any]]] = {"up": [], "down": []}
    try:
        assert endpoints.stdout is not None and endpoints.stdout.readline().strip() == b"ready"
        for case, prefix in cases:
            env = (
                sinks_env(prefix, live, udp_port, down=False)
                if case == "up"
                else sinks_env(prefix, dead, free_port(), down=True)
            )
            results[case].append(await consume_rate(redis, prefix, env, args.events))
    finally:
        endpoints.terminate()
        endpoints.wait(timeout=10)
        await redis.aclose()
        await drop_topics(bootstrap, [prefix for _, prefix in cases])

    up = statistics.median(r["events_per_s"] for r in results["up"])
    down = statistics.median(r["events_per_s"] for r in results["down"])
    dropped = sum(r["dropped"] for r in results["down"])
    failed = sum(r["failed"] for r in results["down"])
    print(
        f"median of {args.rounds}: endpoints up {up:.0f} events/s, down {down:.0f} events/s "
        f"(down runs: {dropped} items dropped, {failed} failed, all counted in the health hash)"
    )
    print(
        json.dumps(
            {
                "bench": "sinks_overhead",
                "events": args.events,
                "down_events_per_s": round(down),
                "baseline_up_events_per_s": round(up),
                "ratio": round(down / up, 2),
                "down_dropped": dropped,
                "down_failed": failed,
            }
        )
    )


async def drop_topics(bootstrap: str, prefixes: list[str]) -> None:
    """The bench's topics go again: they only fill the shared broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [
            f"{p}.{n}" for p in prefixes for n in ("events", "metrics", "alerts", "budget-state")
        ]
        await admin.delete_topics(names)
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())

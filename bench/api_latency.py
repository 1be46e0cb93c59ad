"""API latency under load: p50/p99 of GET /v1/metrics/summary and of a 24 h performance
query at 500 requests/s, side by side with GET /healthz (the floor: same server, no Redis).

Run: .venv/bin/python bench/api_latency.py [--rate 500] [--seconds 10]

- Redis: GENPULSE_REDIS_URL when set (a private key prefix is used), else a redis-server of
  its own. It is filled through the worker's own SnapshotWriter with 24 h of minute and hour
  partials (phases, marks, model calls, quality), as a busy worker would leave them.
- The API: `genpulse api` in a subprocess (one uvicorn process), tokens from the environment.
- A thread publishes the worker's "updated" notice once a second (what a busy worker does),
  so the API recomputes every answer once a second instead of serving one cached forever.
- The load: a separate process per endpoint sends requests open-loop on a fixed schedule
  (request i at t0 + i/rate) over 64 keep-alive connections; latency is measured from the
  scheduled time, so a slow server cannot hide queueing (no coordinated omission).
Targets (issue 5): summary p99 <= 20 ms, 24 h performance p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-read-token-0123456789"
ENDPOINTS = {
    "healthz": "/healthz",
    "summary": "/v1/metrics/summary",
    "performance_24h": "/v1/metrics/performance?window=24h",
}


# -- the load process ---------------------------------------------------------------------


async def _request(
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]], raw: bytes
) -> int:
    reader, writer = await pool.get()
    try:
        writer.write(raw)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return int(status_line.split()[1])
    finally:
        pool.put_nowait((reader, writer))


async def _load(port: int, path: str, rate: float, seconds: float) -> dict[str, float]:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    raw = (f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        status = await _request(pool, raw)
        latencies.append(loop.time() - scheduled)
        errors += status != 200

    total = int(rate * seconds)
    start = loop.time() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "requests": total,
        "errors": errors,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "achieved_rps": total / (loop.time() - start),
    }


# -- data and server ----------------------------------------------------------------------


async def _fill(redis_url: str, prefix: str) -> None:
    from streams import keys
    from streams.partial import Partial, Targets
    from streams.snapshots import SnapshotWriter

    rng = random.Random(5)
    targets = Targets()

    def partial(sessions: int) -> bytes:
        p = Partial()
        for s in range(sessions):
            p.add_event("generation_started", {}, targets)
            for phase in ("extraction", "analysis", "synthesis", "enhancement"):
                ms = rng.lognormvariate(6, 0.5)
                p.add_event("phase_completed", {"phase": phase, "duration_ms": ms}, targets)
            for mark in ("first_byte", "first_content", "interactive"):
                p.add_event(mark, {"elapsed_ms": rng.lognormvariate(6, 0.7)}, targets)
            p.add_event(
                "model_called",
                {
                    "model": rng.choice(["claude-haiku", "claude-sonnet", "claude-opus"]),
                    "input_tokens": 900,
                    "output_tokens": 300,
                    "cost_nanousd": rng.randint(10**6, 10**8),
                },
                targets,
            )
            p.add_event("quality_scored", {"score": rng.uniform(30, 100)}, targets)
            p.add_event("generation_completed", {"duration_ms": 9000.0 + s}, targets)
        return json.dumps(p.to_json()).encode()

    writer = SnapshotWriter(redis_url, prefix)
    now = time.time_ns() // 1_000_000
    this_minute = keys.floor(now, keys.MINUTE_MS)
    for partition in range(3):  # three source partitions, merged at read time
        for m in range(24 * 60 + 1):
            start = this_minute - m * keys.MINUTE_MS
            writer.put(keys.minute(prefix, start), f"events:{partition}", partial(3), 3 * 3600)
        for h in range(26):
            start = keys.floor(now, keys.HOUR_MS) - h * keys.HOUR_MS
            writer.put(keys.hour(prefix, start), f"events:{partition}", partial(40), 3 * 3600)
        assert await writer.flush()
    await writer.redis.aclose()


def _publish_notices(redis_url: str, prefix: str, stop: threading.Event) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    while not stop.wait(1.0):
        notice = {"kind": "updated", "written_ms": time.time_ns() // 1_000_000}
        client.publish(f"{prefix}:updates", json.dumps(notice))
    client.close()


def _drop_keys(redis_url: str, prefix: str) -> None:
    """Leave a shared Redis as it was."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the API did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--load", nargs=3, metavar=("PORT", "PATH", "_"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        port, path, _ = args.load
        print(json.dumps(asyncio.run(_load(int(port), path, args.rate, args.seconds))))
        return

    from genpulse.devservices import free_port, start_redis

    work = Path(tempfile.mkdtemp(prefix="api-latency-"))
    own_redis = None
    redis_url = os.environ.get("GENPULSE_REDIS_URL")
    if not redis_url:
        own_redis = start_redis(work / "redis")
        redis_url = own_redis.url
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(_fill(redis_url, prefix))
    port = free_port()
    env = {
        **os.environ,
        "GENPULSE_REDIS_URL": redis_url,
        "GENPULSE_TOPIC_PREFIX": prefix,
        "GENPULSE_API_READ_TOKENS": TOKEN,
        "GENPULSE_API_PORT": str(port),
    }
    log = work / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "genpulse.cli", "api", "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    stop_notices = threading.Event()
    notices = threading.Thread(
        target=_publish_notices, args=(redis_url, prefix, stop_notices), daemon=True
    )
    notices.start()
    try:
        _wait_ready(port, api, log)
        results: dict[str, dict[str, float]] = {}
        for name, path in ENDPOINTS.items():
            # warm-up at a low rate, then the measured run, each in its own load process
            for seconds, rate, keep in ((2.0, 50.0, False), (args.seconds, args.rate, True)):
                done = subprocess.run(
                    [sys.executable, __file__, "--load", str(port), path, "-",
                     "--rate", str(rate), "--seconds", str(seconds)],
                    capture_output=True, check=True, cwd=ROOT,
                )  # fmt: skip
                if keep:
                    results[name] = json.loads(done.stdout.decode().strip().splitlines()[-1])
            r = results[name]
            print(
                f"{name:>16}: p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                f"{r['achieved_rps']:.0f} req/s  errors {r['errors']:.0f}/{r['requests']:.0f}"
            )
    finally:
        stop_notices.set()
        api.terminate()
        api.wait(timeout=30)
        _drop_keys(redis_url, prefix)
        if own_redis is not None:
            own_redis.stop()
    floor = results["healthz"]
    figures = {
        "bench": "api_latency",
        "rate_rps": args.rate,
        "seconds": args.seconds,
        "summary_p50_ms": round(results["summary"]["p50_ms"], 2),
        "summary_p99_ms": round(results["summary"]["p99_ms"], 2),
        "performance_24h_p50_ms": round(results["performance_24h"]["p50_ms"], 2),
        "performance_24h_p99_ms": round(results["performance_24h"]["p99_ms"], 2),
        "baseline_healthz_p50_ms": round(floor["p50_ms"], 2),
        "baseline_healthz_p99_ms": round(floor["p99_ms"], 2),
        "summary_p99_ratio": round(results["summary"]["p99_ms"] / floor["p99_ms"], 2),
        "performance_24h_p99_ratio": round(
            results["performance_24h"]["p99_ms"] / floor["p99_ms"], 2
        ),
        "errors": sum(int(r["errors"]) for r in results.values()),
        "targets_ms": {"summary_p99": 20, "performance_24h_p99": 50},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

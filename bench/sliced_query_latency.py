"""Sliced reads under load: p50/p99 of 24 h queries with filters and `group_by` at 200
requests/s, side by side with the same 24 h query unsliced and GET /healthz (the floor).

Run: .venv/bin/python bench/sliced_query_latency.py [--rate 200] [--seconds 10] [--events 40000]

- Kafka and Redis: GENPULSE_KAFKA_BOOTSTRAP / GENPULSE_REDIS_URL when set, else a broker
  and a redis-server of its own.
- The data is what a real worker leaves: `genpulse worker` (a subprocess) aggregates the
  worker tests' seeded workload spread over the last 23 h, each session given one of 3
  services, maybe one of 2 environments and one of 5 `feature` tag values, 300 users. So
  the slice rows (cells, user and tag tables) are the worker's own, not a copy of their
  format.
- The API (`genpulse api`, one uvicorn process), the once-a-second "updated" notice and the
  open-loop load process are bench/api_latency.py's: request i is sent at t0 + i/rate over
  64 keep-alive connections and timed from its scheduled time (no coordinated omission).
Target (issue 14): a sliced 24 h query p99 <= 50 ms at 200 req/s.
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
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' workload and helpers
sys.path.insert(0, str(ROOT / "bench"))

from api_latency import TOKEN, _drop_keys, _publish_notices, _wait_ready  # noqa: E402

from streams.settings import WorkerSettings  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402
from tests.streams.helpers import WorkerProcess, encode, produce  # noqa: E402
from tests.streams.workload import workload  # noqa: E402

ENDPOINTS = {
    "healthz": "/healthz",
    "performance_24h": "/v1/metrics/performance?window=24h",
    "performance_24h_sliced": "/v1/metrics/performance?window=24h&service=generator&tier=opus",
    "summary_24h_by_service": "/v1/metrics/summary?window=24h&group_by=service",
    "costs_24h_environment": "/v1/metrics/costs?window=24h&environment=prod",
    "summary_24h_tag": "/v1/metrics/summary?window=24h&tag=feature:uvp",
    "top_users_24h": "/v1/top/users?window=24h&by=cost",
}
SLICED = [name for name in ENDPOINTS if name not in ("healthz", "performance_24h")]


def sliced_workload(events: int, now_ms: int) -> list[dict[str, object]]:
    rng = random.Random(14)
    out = workload(14, events, now_ms - 23 * 3_600_000, 23 * 3_600_000 - 120_000)
    chosen: dict[str, tuple[str, str | None, str]] = {}
    for e in out:
        sid = str(e["session_id"])
        if sid not in chosen:
            chosen[sid] = (
                rng.choice(("generator", "editor", "exporter")),
                rng.choice(("prod", "staging", None)),
                rng.choice(("uvp", "benefits", "headline", "tone", "seo")),
            )
        service, environment, feature = chosen[sid]
        e["service"] = service
        if environment is not None:
            e["environment"] = environment
        e["tags"] = {"feature": feature}
    return out


def _events_seen(port: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/metrics/summary?window=24h",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["events"])


def _measure(port: int, path: str, rate: float, seconds: float) -> dict[str, float]:
    """A warm-up at a low rate, then the measured run, each in its own load process."""
    result: dict[str, float] = {}
    for run_s, run_rate in ((2.0, 20.0), (seconds, rate)):
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "api_latency.py"),
                "--load",
                str(port),
                path,
                "-",
                "--rate",
                str(run_rate),
                "--seconds",
                str(run_s),
            ],
            capture_output=True,
            check=True,
            cwd=ROOT,
        )
        result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=40_000)
    args = parser.parse_args()

    from genpulse.devservices import free_port, start_kafka, start_redis

    work = Path(tempfile.mkdtemp(prefix="sliced-latency-"))
    own = []
    bootstrap = os.environ.get("GENPULSE_KAFKA_BOOTSTRAP")
    if not bootstrap:
        own.append(kafka := start_kafka(work / "kafka"))
        bootstrap = kafka.bootstrap
    redis_url = os.environ.get("GENPULSE_REDIS_URL")
    if not redis_url:
        own.append(redis := start_redis(work / "redis"))
        redis_url = redis.url
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = WorkerSettings(
        kafka_bootstrap=bootstrap, redis_url=redis_url, topic_prefix=prefix, app_id=prefix
    )
    asyncio.run(ensure_topics(settings))
    events = sliced_workload(args.events, time.time_ns() // 1_000_000)
    asyncio.run(produce(bootstrap, settings.topic("events"), encode(events)))
    worker = WorkerProcess(settings, work, "w0").start()
    port = free_port()
    env = {
        **os.environ,
        "GENPULSE_KAFKA_BOOTSTRAP": bootstrap,
        "GENPULSE_REDIS_URL": redis_url,
        "GENPULSE_TOPIC_PREFIX": prefix,
        "GENPULSE_API_READ_TOKENS": TOKEN,
        "GENPULSE_API_PORT": str(port),
    }
    log = work / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "genpulse.cli", "api", "--log-level", "warning"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stop_notices = threading.Event()
    try:
        _wait_ready(port, api, log)
        deadline = time.monotonic() + 300
        while _events_seen(port) < len(events):
            if time.monotonic() > deadline or not worker.alive():
                raise SystemExit(f"the worker did not aggregate:\n{worker.log_tail()}")
            time.sleep(0.5)
        worker.stop()  # the data is in Redis; the load does not share the CPU with it
        threading.Thread(
            target=_publish_notices, args=(redis_url, prefix, stop_notices), daemon=True
        ).start()
        results: dict[str, dict[str, float]] = {}
        for name, path in ENDPOINTS.items():
            results[name] = r = _measure(port, path, args.rate, args.seconds)
            print(
                f"{name:>30}: p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                f"{r['achieved_rps']:.0f} req/s  errors {r['errors']:.0f}/{r['requests']:.0f}",
                flush=True,
            )
    finally:
        stop_notices.set()
        api.terminate()
        api.wait(timeout=30)
        worker.stop()
        if os.environ.get("GENPULSE_BENCH_KEEP") != "1":
            _drop_keys(redis_url, prefix)
        for service in own:
            service.stop()
    floor, whole = results["healthz"], results["performance_24h"]
    worst = max(SLICED, key=lambda n: results[n]["p99_ms"])
    print(
        json.dumps(
            {
                "bench": "sliced_query_latency",
                "rate_rps": args.rate,
                "seconds": args.seconds,
                "events": len(events),
                **{f"{n}_p99_ms": round(results[n]["p99_ms"], 2) for n in ENDPOINTS},
                "errors": sum(int(results[n]["errors"]) for n in ENDPOINTS),
                "worst_sliced": worst,
                "worst_sliced_p99_ms": round(results[worst]["p99_ms"], 2),
                "baseline_unsliced_performance_24h_p99_ms": round(whole["p99_ms"], 2),
                "baseline_healthz_p99_ms": round(floor["p99_ms"], 2),
                "ratio_worst_sliced_to_unsliced_p99": round(
                    results[worst]["p99_ms"] / whole["p99_ms"], 2
                ),
                "target_sliced_p99_ms": 50,
            }
        )
    )


if __name__ == "__main__":
    main()

"""OTLP ingest throughput of one API process: GenAI spans/s on /v1/otlp/v1/traces (protobuf,
and OTLP/JSON) next to events/s on /v1/collect (the baseline), in the same run.

Run: .venv/bin/python bench/otlp_ingest.py [--seconds 8] [--batch 100] [--concurrency 8]

- Kafka and Redis: GENPULSE_KAFKA_BOOTSTRAP / GENPULSE_REDIS_URL when set (private topics),
  else a broker and a redis-server of its own (genpulse.devservices). Topics are created
  first, as `genpulse topics` would.
- The API: `genpulse api` in a subprocess (one uvicorn process, one Kafka producer).
- The load: the three phases alternate `--rounds` times; in each, `--concurrency`
  closed-loop senders over keep-alive connections post one batch of `--batch` model calls
  at a time: an ExportTraceServiceRequest of that many chat spans (gzip off, as the SDK's
  default), its OTLP/JSON form, or a /v1/collect body of that many `model_called` events.
  Every answer must be a 2xx; each phase warms up for 1 s.
Both paths end in the same transactional Kafka write, so the ratio is the cost of decoding
and mapping OTLP against validating the SDK's own JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
from google.protobuf import json_format

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genpulse.devservices import free_port, start_kafka, start_redis  # noqa: E402
from streams.settings import WorkerSettings  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402
from tests.api.otlp_spans import chat, export, span  # noqa: E402

KEY = "bench-ingest-key-0123456789"


def otlp_body(batch: int) -> bytes:
    spans = [span(chat(**{"session.id": f"s-{i % 16}", "user.id": "u"})) for i in range(batch)]
    return export(*spans).SerializeToString()


def otlp_json_body(batch: int) -> bytes:
    document = json_format.MessageToDict(export(*[span(chat()) for _ in range(batch)]))
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for item in scope["spans"]:  # OTLP/JSON ids are hex, not protobuf's base64
                for key in ("traceId", "spanId"):
                    item[key] = base64.b64decode(item[key]).hex()
    return orjson.dumps(document)


def collect_body(batch: int) -> bytes:
    now = int(time.time() * 1000)
    return orjson.dumps(
        [
            {
                "type": "model_called",
                "event_id": uuid.uuid4().hex,
                "timestamp": now,
                "session_id": f"s-{i % 16}",
                "user_id": "u",
                "service": "bench",
                "data": {
                    "model": "claude-sonnet-4-5",
                    "tier": "sonnet",
                    "input_tokens": 1200,
                    "output_tokens": 300,
                    "cost_nanousd": 8_100_000,
                },
            }
            for i in range(batch)
        ]
    )


async def phase(
    base: str, path: str, body: bytes, content_type: str, seconds: float, concurrency: int
) -> tuple[int, float]:
    """(batches answered in the measured window, its length in seconds)."""
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": content_type}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        loop = asyncio.get_running_loop()
        warm_until = loop.time() + 1.0
        stop_at = warm_until + seconds
        counted = 0

        async def sender() -> None:
            nonlocal counted
            while (now := loop.time()) < stop_at:
                response = await client.post(path, content=body, headers=headers)
                if response.status_code >= 300:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
                if now >= warm_until:
                    counted += 1

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return counted, seconds


def wait_ready(base: str, api: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise SystemExit("genpulse api exited; run it by hand to see why")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("genpulse api did not become ready in 60 s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="phases alternate this often")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kafka = None if os.environ.get("GENPULSE_KAFKA_BOOTSTRAP") else start_kafka(work / "kafka")
        redis = None if os.environ.get("GENPULSE_REDIS_URL") else start_redis(work / "redis")
        bootstrap = kafka.bootstrap if kafka else os.environ["GENPULSE_KAFKA_BOOTSTRAP"]
        redis_url = redis.url if redis else os.environ["GENPULSE_REDIS_URL"]
        prefix = f"bench-otlp-{uuid.uuid4().hex[:8]}"
        asyncio.run(
            ensure_topics(
                WorkerSettings(kafka_bootstrap=bootstrap, redis_url=redis_url, topic_prefix=prefix)
            )
        )
        port = free_port()
        env = {
            **os.environ,
            "GENPULSE_KAFKA_BOOTSTRAP": bootstrap,
            "GENPULSE_REDIS_URL": redis_url,
            "GENPULSE_TOPIC_PREFIX": prefix,
            "GENPULSE_API_INGEST_KEYS": KEY,
        }
        api = subprocess.Popen(
            [sys.executable, "-m", "genpulse.cli", "api", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, api)
            runs = {
                "otlp_protobuf": (
                    "/v1/otlp/v1/traces",
                    otlp_body(args.batch),
                    "application/x-protobuf",
                ),
                "otlp_json": ("/v1/otlp/v1/traces", otlp_json_body(args.batch), "application/json"),
                "collect": ("/v1/collect", collect_body(args.batch), "application/json"),
            }
            done = dict.fromkeys(runs, 0)
            for _ in range(args.rounds):  # alternating, so a busy machine slows all alike
                for name, (path, body, content_type) in runs.items():
                    batches, _seconds = asyncio.run(
                        phase(
                            base,
                            path,
                            body,
                            content_type,
                            args.seconds / args.rounds,
                            args.concurrency,
                        )
                    )
                    done[name] += batches
            rates = {name: done[name] * args.batch / args.seconds for name in runs}
            for name, (_, body, _) in runs.items():
                print(f"{name}: {rates[name]:,.0f} per second ({len(body):,} B per batch)")
        finally:
            api.terminate()
            api.wait(timeout=30)
            if redis:
                redis.stop()
            if kafka:
                kafka.stop()
    print(
        json.dumps(
            {
                "bench": "otlp_ingest",
                "batch": args.batch,
                "concurrency": args.concurrency,
                "otlp_spans_per_s": round(rates["otlp_protobuf"]),
                "otlp_json_spans_per_s": round(rates["otlp_json"]),
                "collect_events_per_s": round(rates["collect"]),
                "ratio": round(rates["otlp_protobuf"] / rates["collect"], 3),
                "json_ratio": round(rates["otlp_json"] / rates["collect"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Shared helpers of the worker tests: run `genpulse worker` as a subprocess, produce events."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


def worker_env(settings: WorkerSettings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "GENPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GENPULSE_REDIS_URL": settings.redis_url,
        "GENPULSE_TOPIC_PREFIX": settings.topic_prefix,
        "GENPULSE_APP_ID": settings.app_id,
        "GENPULSE_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "GENPULSE_SNAPSHOT_INTERVAL_S": str(settings.snapshot_interval_s),
    }
    env.update(extra)
    return env


class WorkerProcess:
    """One `genpulse worker` subprocess with its own data dir and log file."""

    def __init__(self, settings: WorkerSettings, tmp: Path, name: str, **extra: str) -> None:
        self.settings, self.name = settings, name
        self.log_path = tmp / f"worker-{name}.log"
        self.env = worker_env(
            settings, GENPULSE_WORKER_ID=name, GENPULSE_DATADIR=str(tmp / f"data-{name}"), **extra
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "genpulse.cli",
                "worker",
                "--log-level",
                os.environ.get("GENPULSE_TEST_WORKER_LOG", "warn"),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def clear_of_midnight(now_ms: int, lookback_ms: int) -> int:
    """`now_ms`, or a little later when [now - lookback, now] would span a UTC midnight.

    A test whose events, from `lookback_ms` ago up to now, must share one UTC day (a daily
    budget, its alert ids) would otherwise fail when run just after midnight; its events then
    lie at most `lookback_ms` + 1 minute ahead of the clock, within the worker's future-skew
    bound (1 h by default)."""
    day_start = now_ms - now_ms % 86_400_000
    return max(now_ms, day_start + lookback_ms + 60_000)


def event(kind: str, ts: int, session: str, user: str | None = "u1", **data: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "type": kind,
        "event_id": uuid.uuid4().hex,
        "timestamp": ts,
        "session_id": session,
        "user_id": user,
        "service": "test-svc",
        "data": data,
    }


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks="all"
    )
    await producer.start()
    n = 0
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            n += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return n


def encode(events: Iterable[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(e["session_id"].encode(), orjson.dumps(e)) for e in events]


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described[0]["partitions"])
    finally:
        await admin.close()


async def read_topic(bootstrap: str, topic: str, idle_ms: int = 2000) -> list[Any]:
    """Every committed record of a topic (all partitions), from the beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        parts = await partitions_of(bootstrap, topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            got = await consumer.getmany(timeout_ms=idle_ms, max_records=20_000)
            for records in got.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def wait_for(
    check: Callable[[], Any],
    timeout_s: float,
    what: str,
    workers: list[WorkerProcess] = (),  # type: ignore[assignment]
) -> Any:
    """Poll an async check until it returns a truthy value; fail with the workers' logs."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last and not isinstance(last, tuple):
            return last
        for w in workers:
            assert w.alive(), f"worker {w.name} died:\n{w.log_tail()}"
        await asyncio.sleep(0.5)
    logs = "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in workers)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}\n{logs}")

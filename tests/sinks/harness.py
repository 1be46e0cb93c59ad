"""Helpers for the sinks tests: run `genpulse sinks` as its own process, feed its topics."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import SecretStr

from producers.contract import Event, encode_event
from streams.sinks import SinkSettings, read_health


@asynccontextmanager
async def running(settings: SinkSettings) -> AsyncIterator[SinksProcess]:
    """`genpulse sinks` with these settings, as its own process, until the block ends.

    A real process, as in production: a stop that hangs fails the test after
    `STOP_TIMEOUT_S` (and the process is killed) instead of hanging the test run.
    """
    await create_topics(settings)
    process = SinksProcess(settings)
    try:
        await process.ready()
        yield process
    finally:
        await process.stop()


STOP_TIMEOUT_S = 30.0
NORMAL_PRIORITY = {"GENPULSE_SINKS_NICE": "0", "GENPULSE_SINKS_CPU_IDLE": "0"}
"""Payload tests need the process to keep up on a busy test machine; test_priority.py
covers the production default (SCHED_IDLE)."""
READY_TIMEOUT_S = 60.0


class SinksProcess:
    """One `genpulse sinks` subprocess, its settings passed as GENPULSE_* variables."""

    def __init__(self, settings: SinkSettings) -> None:
        self.settings = settings
        self._log = Path(tempfile.mkdtemp(prefix="sinks-")) / "sinks.log"
        with self._log.open("wb") as out:  # the child keeps its own copy of the handle
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "genpulse.cli", "sinks", "--log-level", "info"],
                env={**os.environ, **settings_env(settings), **NORMAL_PRIORITY},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def health(self) -> dict[str, dict[str, Any]]:
        redis = aioredis.from_url(self.settings.redis_url)
        try:
            return await read_health(redis, self.settings.topic_prefix)
        finally:
            await redis.aclose()

    async def ready(self) -> None:
        """Until every feed reads its topic (its `ready_ms` in the health hash)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise AssertionError(f"genpulse sinks exited with {code}" + self.log())
            if feeds_ready(await self.health()):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the sinks' feeds were not ready in {READY_TIMEOUT_S} s" + self.log())

    async def stop(self) -> None:
        """SIGTERM: a clean stop drains and exits 0 within STOP_TIMEOUT_S, or the test fails."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self._proc.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise AssertionError("genpulse sinks did not stop on SIGTERM" + self.log()) from None
        assert code == 0, f"genpulse sinks exited with {code}" + self.log()
        shutil.rmtree(self._log.parent, ignore_errors=True)

    def log(self) -> str:
        text = self._log.read_bytes().decode(errors="replace")[-20_000:]
        return "\n--- genpulse sinks output ---\n" + text


def feeds_ready(health: dict[str, dict[str, Any]]) -> bool:
    """True once a sinks process wrote its health hash and every feed in it has `ready_ms`."""
    feeds = [v for k, v in health.items() if k.startswith("feed:")]
    return bool(feeds) and all(f.get("ready_ms") for f in feeds)


def settings_env(settings: SinkSettings) -> dict[str, str]:
    """The GENPULSE_* variables that give a `genpulse sinks` process these settings."""
    env = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, tuple | list):
            text = ",".join(v.get_secret_value() if isinstance(v, SecretStr) else v for v in value)
        elif isinstance(value, dict):
            text = orjson.dumps(value).decode()
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = str(value)
        env[f"GENPULSE_{name.upper()}"] = text
    return env


async def create_topics(settings: SinkSettings, partitions: int = 1) -> None:
    """The topics the sinks read (a feed waits for its topic, as the worker creates them)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = [settings.topic(n) for n in ("events", "metrics", "alerts", "budget-state")]
        existing = set(await admin.list_topics())
        new = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def produce_events(settings: SinkSettings, events: list[Event]) -> None:
    await produce(
        settings.kafka_bootstrap,
        settings.topic("events"),
        [(e.session_id.encode(), encode_event(e)) for e in events],
    )


async def produce_json(settings: SinkSettings, topic: str, records: list[dict[str, Any]]) -> None:
    key_field = "id" if topic == "alerts" else "scope"
    await produce(
        settings.kafka_bootstrap,
        settings.topic(topic),
        [(str(r[key_field]).encode(), orjson.dumps(r)) for r in records],
    )


async def health_of(redis: aioredis.Redis, settings: SinkSettings, sink: str) -> dict[str, Any]:
    return (await read_health(redis, settings.topic_prefix)).get(sink, {})

"""How tests get real Kafka and Redis: an env var, else testcontainers with Docker, else local jars.

Kept apart from conftest.py so helpers (e.g. restarting a private broker) can import it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from genpulse.devservices import start_kafka, start_redis


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextmanager
def kafka_service(work_dir: Path) -> Iterator[str]:
    if env := os.environ.get("GENPULSE_KAFKA_BOOTSTRAP"):
        yield env
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    server = start_kafka(work_dir / "kafka")
    try:
        yield server.bootstrap
    finally:
        server.stop()


@contextmanager
def redis_service(work_dir: Path) -> Iterator[str]:
    if env := os.environ.get("GENPULSE_REDIS_URL"):
        yield env
        return
    if docker_engine_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
        return
    server = start_redis(work_dir / "redis")
    try:
        yield server.url
    finally:
        server.stop()


def create_topology(bootstrap: str, prefix: str) -> None:
    """Create a prefix's topics as the worker or `genpulse topics create` would: the broker
    does not auto-create them, and the SDK and the API never do."""
    from streams.settings import WorkerSettings
    from streams.topics import ensure_topics

    settings = WorkerSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    with ThreadPoolExecutor(max_workers=1) as pool:  # callers may be inside a running loop
        pool.submit(asyncio.run, ensure_topics(settings)).result()

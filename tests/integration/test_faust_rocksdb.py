"""Faust + rocksdict + the local broker work together: an agent's RocksDB table holds the counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from genpulse.devservices import free_port
from producers.settings import GenPulseSettings

EXPECTED = {"haiku": 120, "sonnet": 60, "opus": 20}


async def test_faust_agent_counts_into_rocksdb_table(
    settings: GenPulseSettings, tmp_path: Path
) -> None:
    topic = f"{settings.topic_prefix}.counter-input"  # the app's own: one partition, as its table
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:  # the broker auto-creates no topic (Faust declares its table's changelog itself)
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    out = tmp_path / "counts.json"
    env = {
        **os.environ,
        "GENPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "COUNTER_TOPIC": topic,
        "COUNTER_DATADIR": str(tmp_path / "faust-data"),
        "COUNTER_OUT": str(out),
    }
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, n in EXPECTED.items():
            for _ in range(n):
                await producer.send(topic, b"x", key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()

    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faust",
            "-A",
            "tests.integration.faust_counter_app",
            "worker",
            "-l",
            "warn",
            "--web-port",
            str(free_port()),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        snapshot: dict[str, object] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if out.exists():
                snapshot = json.loads(out.read_text())
                if snapshot["counts"] == EXPECTED:
                    break
            time.sleep(0.5)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        assert snapshot.get("counts") == EXPECTED, snapshot
        assert snapshot["store"] == "faust.stores.rocksdb.Store"
        assert snapshot["use_rocksdict"] is True
        assert snapshot["db_types"] == ["Rdict"]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert list((tmp_path / "faust-data").rglob("*.sst")) or list(
        (tmp_path / "faust-data").rglob("CURRENT")
    ), "no RocksDB files on disk"

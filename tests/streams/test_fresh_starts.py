"""Fresh starts as a new user makes them, and the worker's refusal of a wrong topology.

Ten consecutive starts on new topic prefixes against a broker that does not auto-create
topics: `genpulse worker` and `genpulse api` as real subprocesses, started worker first, API
first, or at the same moment, with the SDK sending at once (before the topics exist, so it
must buffer) on every partition; each start must count every event, read back through the
API. Then a pre-made one-partition changelog (what an auto-creating broker left behind in
issue 12) must make `genpulse worker` exit with one line, and `genpulse topics create` must
repair it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from genpulse.devservices import free_port
from producers import GenPulse
from streams.settings import WorkerSettings
from streams.topics import auto_creating_brokers, ensure_topics, inspect
from streams.topology import errors
from tests.streams.helpers import ROOT, WorkerProcess, worker_env

pytestmark = pytest.mark.integration

STARTS = 10
PARTITIONS = 6
SESSIONS_PER_PARTITION = 2
READ_TOKEN = "fresh-start-read-token-0123456789"
ORDERS = ("worker first", "api first", "together")


def sessions_on_every_partition(tag: str) -> list[str]:
    """Session ids whose keys land on each partition SESSIONS_PER_PARTITION times."""
    found: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    i = 0
    while any(len(v) < SESSIONS_PER_PARTITION for v in found.values()):
        sid = f"{tag}-s{i}"
        p = (murmur2(sid.encode()) & 0x7FFFFFFF) % PARTITIONS
        if len(found[p]) < SESSIONS_PER_PARTITION:
            found[p].append(sid)
        i += 1
    return [sid for sids in found.values() for sid in sids]


class ApiProcess:
    """`genpulse api` as a subprocess on a free port."""

    def __init__(self, settings: WorkerSettings, tmp: Path) -> None:
        self.port = free_port()
        self.log_path = tmp / f"api-{settings.topic_prefix}.log"
        self.env = {**worker_env(settings), "GENPULSE_API_READ_TOKENS": READ_TOKEN}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiProcess:
        cmd = [sys.executable, "-m", "genpulse.cli", "api", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*cmd, "--log-level", "warning"], env=self.env, stdout=log, stderr=log, cwd=ROOT
            )
        return self

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


async def counted_events(api: ApiProcess, start_ms: int, end_ms: int) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        try:
            response = await http.get(
                f"http://127.0.0.1:{api.port}/v1/metrics/summary",
                params={"from": start_ms, "to": end_ms},
                headers={"Authorization": f"Bearer {READ_TOKEN}"},
            )
        except httpx.TransportError:
            return -1  # not listening yet
    return int(response.json()["events"]) if response.status_code == 200 else -1


async def records_per_partition(bootstrap: str, topic: str) -> list[int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return [ends[tp] for tp in tps]
    finally:
        await consumer.stop()


async def one_fresh_start(
    base: WorkerSettings, tmp: Path, i: int, stopping: list[subprocess.Popen[bytes]]
) -> float:
    prefix = f"{base.topic_prefix}-{i}"
    settings = base.model_copy(update={"topic_prefix": prefix, "app_id": prefix})
    worker = WorkerProcess(settings, tmp, f"w{i}")
    api = ApiProcess(settings, tmp)
    order = ORDERS[i % len(ORDERS)]
    began = time.monotonic()
    first, second = (worker, api) if order == "worker first" else (api, worker)
    first.start()
    if order != "together":
        await asyncio.sleep(0.3)
    second.start()
    sessions = sessions_on_every_partition(prefix)
    client = GenPulse(
        service="fresh-start",
        bootstrap_servers=settings.kafka_bootstrap,
        topic_prefix=prefix,
        follow_budget_state=False,
        retry_max_backoff_s=0.5,
    )
    try:
        for sid in sessions:  # sent at once: the topics may not exist yet, so they wait
            client.events.track("generation_started", {}, session_id=sid, user_id="u1")
        deadline = time.monotonic() + 120  # generous: the CI machine may be busy
        while not client.flush(timeout=2):
            assert worker.alive(), f"start {i} ({order}): worker died:\n{worker.log_tail()}"
            assert time.monotonic() < deadline, (
                f"start {i} ({order}): SDK did not deliver: {client.stats()}\n{worker.log_tail()}"
            )
        now = time.time_ns() // 1_000_000
        counted = -1
        while counted != len(sessions) and time.monotonic() < deadline:
            assert worker.alive(), f"start {i} ({order}): worker died:\n{worker.log_tail()}"
            await asyncio.sleep(0.3)
            counted = await counted_events(api, now - 3_600_000, now + 3_600_000)
        assert counted == len(sessions), (
            f"start {i} ({order}): the API counts {counted} of {len(sessions)} events\n"
            f"{worker.log_tail()}\n{api.log_tail()}"
        )
        elapsed = time.monotonic() - began
        per_partition = await records_per_partition(
            settings.kafka_bootstrap, settings.topic("events")
        )
        assert per_partition == [SESSIONS_PER_PARTITION] * PARTITIONS, per_partition
        _, observed, found = await inspect(settings)
        assert not errors(found), found
        assert observed[settings.internal_topic("events-changelog")].partitions == PARTITIONS
        return elapsed
    finally:
        client.close(timeout=5)
        api.terminate()
        if worker.proc is not None:
            worker.proc.send_signal(signal.SIGTERM)  # reaped at the end: next start goes on
            stopping.append(worker.proc)
        if api.proc is not None:
            stopping.append(api.proc)


@pytest.mark.timeout(1200)  # ten worker starts: about 10 s each here, far more on a busy machine
async def test_ten_fresh_starts_count_everything(
    worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    assert not await auto_creating_brokers(worker_settings), (
        "the test broker auto-creates topics; these starts must run without that"
    )
    stopping: list[subprocess.Popen[bytes]] = []
    try:
        times = [
            await one_fresh_start(worker_settings, tmp_path, i, stopping) for i in range(STARTS)
        ]
    finally:
        for proc in stopping:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
    print(f"seconds from start to all counted: {[round(t, 1) for t in times]}")


def genpulse(settings: WorkerSettings, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = worker_env(settings, GENPULSE_DATADIR=str(tmp / "data"))
    return subprocess.run(
        [sys.executable, "-m", "genpulse.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


async def test_a_one_partition_changelog_stops_the_worker_with_one_line(
    worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    changelog = worker_settings.internal_topic("events-changelog")
    admin = AIOKafkaAdminClient(bootstrap_servers=worker_settings.kafka_bootstrap)
    await admin.start()
    try:  # what a broker's auto-creation made in issue 12: one partition, not compacted
        await admin.create_topics([NewTopic(changelog, 1, 1)])
    finally:
        await admin.close()

    done = await asyncio.to_thread(genpulse, worker_settings, tmp_path, "worker")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    line = lines[0]
    assert changelog in line and "1 partition but its source" in line, line
    assert "genpulse topics create" in line, line

    checked = await asyncio.to_thread(genpulse, worker_settings, tmp_path, "topics", "check")
    assert checked.returncode == 1 and "cleanup.policy is delete, must be compact" in checked.stdout

    created = await asyncio.to_thread(genpulse, worker_settings, tmp_path, "topics", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    checked = await asyncio.to_thread(genpulse, worker_settings, tmp_path, "topics", "check")
    assert checked.returncode == 0 and "11 topics match the definition" in checked.stdout
    _, observed, _ = await inspect(worker_settings)
    assert observed[changelog].partitions == worker_settings.topic_partitions
    assert observed[changelog].configs["cleanup.policy"] == "compact"


async def test_several_workers_applying_the_topology_at_once_agree(
    worker_settings: WorkerSettings,
) -> None:
    results = await asyncio.gather(*(ensure_topics(worker_settings) for _ in range(5)))
    assert results == [{"events": PARTITIONS, "metrics": PARTITIONS, "dlq": PARTITIONS}] * 5
    _, observed, found = await inspect(worker_settings)
    assert found == [] and len(observed) == 11

"""Events per second through one worker process with every aggregate on, draining a topic
filled beforehand, side by side with a naive Faust agent in the same run.

Run: .venv/bin/python bench/worker_throughput.py [--events 300000] [--naive-seconds 60]

The topic (6 partitions) is filled first, so the load generator does not share the CPU.
The worker (`genpulse worker`, a subprocess) then drains it: the figure is events divided
by the time from its first committed offset to the last, read from its consumer group's
committed offsets (Kafka's own record of progress, not the worker's word). Baseline, same
run, same topic: bench/naive_faust_agent.py, `async for` + one RocksDB table increment per
event, timed the same way from its progress file. Targets (issue 4): >= 50,000 events/s
and >= 10x the naive agent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError

from streams.settings import WorkerSettings
from streams.topics import ensure_topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers

from tests.streams.helpers import WorkerProcess, produce
from tests.streams.workload import workload

ROOT = Path(__file__).resolve().parents[1]


async def committed(bootstrap: str, group: str) -> int:
    """Offsets the group committed on events; 0 until its coordinator exists (a brand-new
    broker makes the offsets topic, and so the coordinator, on the first group's request)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
        return 0  # asked again on the next poll
    finally:
        await admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic.endswith(".events"))


async def fill_topic(settings: WorkerSettings, events: int) -> int:
    """Create the topics and fill the events topic with `events` seeded demo events from the
    last half hour, before any consumer runs; returns how many records were written."""
    await ensure_topics(settings)
    now = int(time.time() * 1000)
    rows = workload(1, events, now - 30 * 60_000, 25 * 60_000)
    return await produce(
        settings.kafka_bootstrap,
        settings.topic("events"),
        [(e["session_id"].encode(), orjson.dumps(e)) for e in rows],
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads (RocksDB's included), from
    /proc: a figure that a slower machine phase (other tenants, a busy broker) moves less
    than wall time, as long as the worker's own code is what it runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_worker(
    settings: WorkerSettings,
    tmp: Path,
    total: int,
    on_first_commit: Callable[[], None] | None = None,
    **env: str,
) -> dict[str, float]:
    """Events/s of one worker draining `total` events, timed from its first commit to its
    last, and the CPU seconds its process used in that time; `on_first_commit` runs once the
    worker is draining; `env`: extra settings."""
    worker = WorkerProcess(settings, tmp, "bench", **env).start()
    assert worker.proc is not None
    group = f"{settings.app_id}-aggregator"
    first_at = first_n = None
    first_cpu = 0.0
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            n = await committed(settings.kafka_bootstrap, group)
            now = time.monotonic()
            if n and first_at is None:
                first_at, first_n, first_cpu = now, n, cpu_seconds(worker.proc.pid)
                if on_first_commit is not None:
                    on_first_commit()
            if n >= total:
                assert first_at is not None and first_n is not None
                cpu = cpu_seconds(worker.proc.pid) - first_cpu
                return {"events": total - first_n, "seconds": now - first_at, "cpu_s": cpu}
            if not worker.alive():
                raise RuntimeError(worker.log_tail())
            await asyncio.sleep(0.1)
        raise TimeoutError("worker did not drain the topic")
    finally:
        worker.stop()


def run_naive(settings: WorkerSettings, tmp: Path, seconds: float) -> dict[str, float]:
    progress = tmp / "naive-progress"
    env = {
        **os.environ,
        "GENPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "NAIVE_TOPIC": settings.topic("events"),
        "NAIVE_APP": f"naive-{uuid.uuid4().hex[:8]}",
        "NAIVE_DATADIR": str(tmp / "naive-data"),
        "NAIVE_PROGRESS": str(progress),
    }
    cmd = [sys.executable, "-m", "faust", "-A", "bench.naive_faust_agent", "worker"]
    proc = subprocess.Popen(
        [*cmd, "--without-web", "-l", "warn"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + seconds + 60
        while time.monotonic() < deadline:
            time.sleep(1)
            if progress.exists():
                n, first, last = progress.read_text().split()
                if float(last) - float(first) >= seconds:
                    break
        n, first, last = progress.read_text().split()
        return {"events": int(n), "seconds": float(last) - float(first)}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--naive-seconds", type=float, default=40.0)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    args = parser.parse_args()
    unique = uuid.uuid4().hex[:8]
    settings = WorkerSettings(
        kafka_bootstrap=args.bootstrap, topic_prefix=f"bench-{unique}", app_id=f"bench-{unique}"
    )
    total = await fill_topic(settings, args.events)
    print(f"filled {settings.topic('events')} with {total} events", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ours = await run_worker(settings, Path(tmp), total)
        rate = ours["events"] / ours["seconds"]
        print(
            f"worker: {ours['events']} events in {ours['seconds']:.2f}s = {rate:,.0f}/s", flush=True
        )
        naive = run_naive(settings, Path(tmp), args.naive_seconds)
        naive_rate = naive["events"] / naive["seconds"]
        print(
            f"naive faust agent: {naive['events']} in {naive['seconds']:.1f}s = {naive_rate:,.0f}/s"
        )
    print(
        json.dumps(
            {
                "bench": "worker_throughput",
                "events_per_s": round(rate),
                "baseline_naive_faust_events_per_s": round(naive_rate),
                "ratio": round(rate / naive_rate, 1),
                "events": total,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

"""docs/operations.md's "Check the topology" and "Rebuilding a worker's state" blocks, run as
an operator would run them (bash, the `genpulse` command) against real Kafka and Redis: the
guide's commands cannot drift from what works."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from streams.reader import MetricsReader
from streams.settings import WorkerSettings
from tests.streams.helpers import WorkerProcess, encode, produce, wait_for, worker_env
from tests.streams.workload import workload

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "operations.md"


def guide_block(heading: str) -> list[str]:
    """The command lines of the first bash block after `heading` in the guide."""
    text = GUIDE.read_text()
    at = text.index(heading)
    block = re.search(r"```bash\n(.*?)```", text[at:], re.S)
    assert block, f"no bash block after {heading!r}"
    return [line for line in block.group(1).splitlines() if line.strip()]


def shell(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", line], env={**env, "PATH": path}, capture_output=True, text=True, cwd=ROOT
    )


@pytest.fixture
def ops_settings(kafka_bootstrap: str, redis_url: str, unique: str) -> WorkerSettings:
    return WorkerSettings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=f"ops-{unique}",
        app_id=f"ops-{unique}",
        snapshot_interval_s=0.5,
    )


def test_check_the_topology(ops_settings: WorkerSettings) -> None:
    lines = guide_block("### Check the topology")
    assert lines == ["genpulse topics check", "genpulse topics describe"]
    env = worker_env(ops_settings)
    fresh = shell(lines[0], env)
    assert fresh.returncode == 1, fresh
    assert f"topic {ops_settings.topic('events')}: missing" in fresh.stdout + fresh.stderr
    assert shell("genpulse topics create", env).returncode == 0
    for line in lines:
        done = shell(line, env)
        assert done.returncode == 0, done
    checked = shell(lines[0], env).stdout
    assert re.search(r"^\d+ topics match the definition$", checked, re.M), checked
    described = shell(lines[1], env).stdout
    assert ops_settings.internal_topic("events-changelog") in described


async def test_rebuild_a_worker(ops_settings: WorkerSettings, tmp_path: Path) -> None:
    lines = guide_block("## Rebuilding a worker's state")
    assert [line.split()[0] for line in lines] == ["kill", "rm", "genpulse"]
    s = ops_settings
    worker = WorkerProcess(s, tmp_path, "w0")
    worker.start()
    now = int(time.time() * 1000)
    events = workload(5, 3_000, now - 10 * 60_000, 5 * 60_000)
    await produce(s.kafka_bootstrap, s.topic("events"), encode(events))
    client = aioredis.from_url(s.redis_url)
    reader = MetricsReader(client, s.key_prefix)
    start, end = now - 3_600_000, now + 3_600_000

    async def figures() -> tuple[dict, dict]:
        return await reader.summary(start, end), await reader.costs(start, end)

    async def all_counted() -> bool | tuple[int, int]:
        seen = (await reader.summary(start, end))["events"]
        return seen == len(events) or (seen, len(events))

    rebuilt: subprocess.Popen[bytes] | None = None
    try:
        await wait_for(all_counted, 120, "every event counted", [worker])
        before = await figures()
        assert worker.proc is not None
        env = {**worker.env, "WORKER_PID": str(worker.proc.pid)}
        assert shell(lines[0], env).returncode == 0  # kill -TERM "$WORKER_PID"
        await asyncio.to_thread(worker.proc.wait, 60)
        data_dir = Path(env["GENPULSE_DATADIR"])
        assert data_dir.exists()
        assert shell(lines[1], env).returncode == 0  # rm -rf "$GENPULSE_DATADIR"
        assert not data_dir.exists()
        keys = [k async for k in client.scan_iter(f"{s.key_prefix}:*")]
        await client.delete(*keys)  # Redis emptied too: the figures must come from Kafka
        assert (await reader.summary(start, end))["events"] == 0
        path = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        with (tmp_path / "rebuilt.log").open("wb") as log:
            rebuilt = subprocess.Popen(
                ["bash", "-c", f"exec {lines[2]} --log-level warn"],
                env={**env, "PATH": path},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        await wait_for(all_counted, 120, "figures rebuilt from the changelogs")
        assert await figures() == before
        assert data_dir.exists()  # the state is back on disk
    finally:
        await client.aclose()
        worker.stop()
        if rebuilt is not None and rebuilt.poll() is None:
            rebuilt.send_signal(signal.SIGTERM)
            rebuilt.wait(60)

"""Soak: the worker under steady load for --minutes (default 10) at --rate events/s; its
resident memory at the end compared with minute 2 (windows must expire, state not grow).

Run: .venv/bin/python bench/worker_soak.py [--minutes 10] [--rate 5000]

Load: a GenPulse client reporting the demo workload (new sessions and users keep coming,
event times are now, so minutes roll over). Memory: VmRSS of the worker process, sampled
every 10 s. Baseline, same run: the RSS at minute 2 (after start-up and the first windows).
Target (issue 4): end RSS within 10 % of minute 2. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from genpulse.demo.driver import drive
from producers import GenPulse
from streams.settings import WorkerSettings
from streams.topics import ensure_topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers

from tests.streams.helpers import WorkerProcess


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5000.0)
    args = parser.parse_args()
    unique = uuid.uuid4().hex[:8]
    s = WorkerSettings(
        kafka_bootstrap=os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        redis_url=os.environ.get("GENPULSE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        topic_prefix=f"soak-{unique}",
        app_id=f"soak-{unique}",
    )
    await ensure_topics(s)
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        worker = WorkerProcess(s, Path(tmp), "soak").start()
        assert worker.proc is not None
        pulse = GenPulse(
            service="soak", bootstrap_servers=s.kafka_bootstrap, topic_prefix=s.topic_prefix
        )
        seconds = args.minutes * 60
        load = threading.Thread(
            target=lambda: drive(pulse, seed=11, duration_s=seconds, rate=args.rate), daemon=True
        )
        began = time.monotonic()
        load.start()
        try:
            while time.monotonic() - began < seconds:
                await asyncio.sleep(10)
                if not worker.alive():
                    raise RuntimeError(worker.log_tail())
                at = time.monotonic() - began
                samples.append((at, rss_mb(worker.proc.pid)))
                print(f"{at:6.0f}s rss {samples[-1][1]:.1f} MB", flush=True)
            load.join(timeout=60)
        finally:
            pulse.close()
            worker.stop()
    minute2 = min(samples, key=lambda s: abs(s[0] - 120))[1]
    end = samples[-1][1]
    print(
        json.dumps(
            {
                "bench": "worker_soak",
                "minutes": args.minutes,
                "rate_events_per_s": args.rate,
                "rss_end_mb": round(end, 1),
                "baseline_rss_minute2_mb": round(minute2, 1),
                "ratio": round(end / minute2, 3),
                "peak_rss_mb": round(max(r for _, r in samples), 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

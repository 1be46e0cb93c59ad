"""Seconds to a ready local Kafka: cold (empty Maven repo and jar cache) vs warm (cached jars).

Run: .venv/bin/python bench/kafka_start.py
The cold start downloads the broker's jars with Maven into throwaway directories; the warm
start reuses them. Both wait until an admin client gets cluster metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from genpulse.devservices import start_kafka


def timed_start(data_dir: Path) -> float:
    began = time.monotonic()
    server = start_kafka(data_dir)
    ready = time.monotonic() - began
    server.stop()
    return ready


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["GENPULSE_CACHE_DIR"] = str(root / "cache")
        os.environ["MAVEN_OPTS"] = f"-Dmaven.repo.local={root / 'm2'}"
        cold = timed_start(root / "cold")
        warm = timed_start(root / "warm")
        warm_restart = timed_start(root / "warm")  # same log dir: already formatted
    print(f"cold start {cold:.1f}s, warm start {warm:.1f}s, warm restart {warm_restart:.1f}s")
    print(
        json.dumps(
            {
                "bench": "kafka_start",
                "warm_start_s": round(warm, 2),
                "warm_restart_s": round(warm_restart, 2),
                "baseline_cold_start_s": round(cold, 2),
                "ratio": round(cold / warm, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

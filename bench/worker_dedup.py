"""Worker events/s with event-id de-duplication on vs off, on the same filled topic, in the
same run; and what remembering 10 M event ids costs in memory.

Run: .venv/bin/python bench/worker_dedup.py [--events 300000] [--ids 10000000] [--rounds 6]
     (needs a broker: GENPULSE_KAFKA_BOOTSTRAP or --bootstrap; `genpulse dev up` starts one)

Throughput: for each run a fresh topic prefix is filled with the same seeded events, then
one worker drains it, timed from its first committed offset to the last
(bench/worker_throughput.py's method), for `--rounds` rounds of off-on / on-off pairs; off
is `GENPULSE_DEDUP_HORIZON_S=0`. Two figures: the ratio of median events/s (wall time), and
the ratio of median events per CPU second of the worker process (all its threads, from
/proc), which the machine's swings between a fast and a slow phase move less (single runs
of one setting differed by 30 % in wall time here, docs/architecture.md).
Goal (issue 12): on/off >= 0.85.
Each run needs its own prefix, not only its own app id: the worker keeps its position in
its changelog topics, which are named by prefix, so a second worker on the same prefix
would restore the first one's position and find nothing left to do.
Memory: this process's RSS before and after 10 M ids go through streams.dedup into a
RocksDB store with the worker's options (committed in polls of 20,000), beside a plain
Python set of the same ids (the in-memory design it replaces); plus the store's size on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.worker_throughput import fill_topic, run_worker
from streams.dedup import SeenEvents
from streams.settings import WorkerSettings
from streams.store import RowStore


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def ids_in_rocksdb(n: int, tmp: Path) -> dict[str, float]:
    gc.collect()
    before = rss_mb()
    store = await RowStore.open(tmp / "ids")
    seen = SeenEvents(store, 86_400_000)
    poll = 20_000
    for start in range(0, n, poll):
        for i in range(start, min(n, start + poll)):
            event_id = f"{i:032x}"
            seen.first_time(event_id, 1_764_000_000_000 + i, i)
        block = seen.take_block()
        assert block is not None
        store.put(*block)
        seen.committed()
    peak = rss_mb()
    disk = sum(f.stat().st_size for f in (tmp / "ids").rglob("*") if f.is_file()) / 2**20
    store.close()
    return {"rss_added_mb": peak - before, "disk_mb": disk}


def ids_in_a_set(n: int) -> float:
    gc.collect()
    before = rss_mb()
    ids = {f"{i:032x}" for i in range(n)}
    added = rss_mb() - before
    del ids
    return added


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--ids", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    args = parser.parse_args()
    unique = uuid.uuid4().hex[:8]
    modes = {"off": {"GENPULSE_DEDUP_HORIZON_S": "0"}, "on": {}}
    with tempfile.TemporaryDirectory() as tmp:
        rates: dict[str, list[float]] = {"off": [], "on": []}
        cpu_rates: dict[str, list[float]] = {"off": [], "on": []}  # events per CPU second
        for round_ in range(args.rounds):
            # off-on, then on-off: a drift in the machine's speed weighs on both modes alike
            for name in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                run_id = f"{name}{round_}-{unique}"
                settings = WorkerSettings(
                    kafka_bootstrap=args.bootstrap, topic_prefix=f"bench-{run_id}", app_id=run_id
                )
                total = await fill_topic(settings, args.events)
                work = Path(tmp) / run_id
                work.mkdir()
                run = await run_worker(settings, work, total, **modes[name])
                rates[name].append(run["events"] / run["seconds"])
                cpu_rates[name].append(run["events"] / run["cpu_s"])
                print(
                    f"dedup {name}: {total} events, {rates[name][-1]:,.0f} events/s, "
                    f"{cpu_rates[name][-1]:,.0f} events per CPU second, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        memory = await ids_in_rocksdb(args.ids, Path(tmp))
    set_mb = ids_in_a_set(args.ids)
    print(
        f"{args.ids:,} ids: RocksDB store +{memory['rss_added_mb']:.0f} MB RSS "
        f"({memory['disk_mb']:.0f} MB on disk); a Python set +{set_mb:.0f} MB",
        flush=True,
    )
    print(
        json.dumps(
            {
                "bench": "worker_dedup",
                "events_per_s_dedup_on": round(max(rates["on"])),
                "baseline_events_per_s_dedup_off": round(max(rates["off"])),
                "ratio": round(max(rates["on"]) / max(rates["off"]), 3),
                "ratio_of_medians": round(median(rates["on"]) / median(rates["off"]), 3),
                "events_per_cpu_s_dedup_on": round(median(cpu_rates["on"])),
                "baseline_events_per_cpu_s_dedup_off": round(median(cpu_rates["off"])),
                "cpu_ratio_of_medians": round(
                    median(cpu_rates["on"]) / median(cpu_rates["off"]), 3
                ),
                "ids": args.ids,
                "ids_rss_added_mb": round(memory["rss_added_mb"]),
                "ids_disk_mb": round(memory["disk_mb"]),
                "baseline_python_set_rss_mb": round(set_mb),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

"""What pulse.instrument_anthropic() adds to a call, counted in CPU instructions and L1 cache
misses (valgrind).

Run: .venv/bin/python bench/anthropic_instructions.py [--modes create,create_stream]

Why: on the shared 2-core machine the timed bench (bench/anthropic_overhead.py) reads
noise of ±5-20 µs around a call of ~1 ms; instructions counted by valgrind's cachegrind
are the same on a loaded machine and a quiet one. Per mode, a child process makes N calls
of the real client (sync; the in-process replay transport of bench/anthropic_overhead.py)
under cachegrind, bare and instrumented (reports queued on a real `DeferredReports`, the
caller's side only: nothing else runs on the caller's thread), at two N; the difference
divided by the difference in N removes start-up. The instructions are turned into µs at
the bare call's own pace (its instructions over its median CPU time, timed in this run
without valgrind), i.e. what they cost inside the client's ~1 ms, not in a hot loop.
Cachegrind also simulates the L1 caches (its I1 and D1, sized like this machine's): the
hook's misses per call are printed beside its instructions, because in a call whose code
and data do not stay in L1 between calls the misses cost more than the instructions (the
bare stream call misses once per ~60 instructions; the stream hook once per ~20-30).
Takes about a minute per child on this machine (valgrind runs Python ~50x slower).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CALLS = (100, 400)


def child(mode: str, variant: str, calls: int) -> None:
    """The measured process: warm up, then `calls` calls of one client."""
    import anthropic
    import httpx

    from bench.anthropic_overhead import record, sync_call
    from producers.deferred import DeferredReports
    from producers.integrations import anthropic as integration
    from producers.problems import InputProblems
    from tests.anthropic_server import MessagesServer

    with MessagesServer() as server:
        replay = record(server)
    client = anthropic.Anthropic(
        base_url="http://127.0.0.1:9", api_key="bench", http_client=httpx.Client(transport=replay)
    )
    jobs = DeferredReports(InputProblems(), wake_at=1 << 30)
    if variant == "instrumented":
        reporter = integration.Reporter(_drop, _drop, _drop, integration.deferring_to(jobs))
        integration.instrument(client, reporter)
    call = sync_call(mode)
    for _ in range(30):
        call(client)
    jobs.clear()
    for i in range(calls):
        call(client)
        if i % 50 == 49:
            jobs.clear()  # queued, never built: the caller's side only


def _drop(*args: Any) -> None:
    """The reporter's outputs: never reached (the jobs are cleared unrun)."""


COUNTS = {"instructions": r"I\s+refs:", "i1_misses": r"I1\s+misses:", "d1_misses": r"D1\s+misses:"}
"""What is read from cachegrind's summary (each count's first figure; D1's is reads + writes)."""


def counts(mode: str, variant: str, calls: int) -> dict[str, int]:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=yes",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        mode,
        variant,
        str(calls),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    out = {}
    for name, label in COUNTS.items():
        found = re.search(label + r"\s+([\d,]+)", done.stderr)
        if found is None:
            raise SystemExit(f"no {name} in valgrind's output: {done.stderr[-300:]}")
        out[name] = int(found.group(1).replace(",", ""))
    return out


def bare_pace(mode: str) -> float:
    """Instructions per µs of the bare call is its count over this: its median CPU µs."""
    import anthropic
    import httpx

    from bench.anthropic_overhead import record, sync_call
    from tests.anthropic_server import MessagesServer

    with MessagesServer() as server:
        replay = record(server)
    client = anthropic.Anthropic(
        base_url="http://127.0.0.1:9", api_key="bench", http_client=httpx.Client(transport=replay)
    )
    call, clock, samples = sync_call(mode), time.thread_time_ns, []
    for _ in range(500):
        began = clock()
        call(client)
        samples.append(clock() - began)
    return sorted(samples)[len(samples) // 2] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="create,create_stream,messages_stream")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "VARIANT", "CALLS"))
    args = parser.parse_args()
    if args.child:
        mode, variant, calls = args.child
        child(mode, variant, int(calls))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind, then run again")
    out: dict[str, Any] = {"bench": "anthropic_instructions", "calls": list(CALLS)}
    for mode in args.modes.split(","):
        per_call: dict[str, dict[str, float]] = {}
        for variant in ("bare", "instrumented"):
            low, high = (counts(mode, variant, n) for n in CALLS)
            per_call[variant] = {k: (high[k] - low[k]) / (CALLS[1] - CALLS[0]) for k in COUNTS}
        bare, hooked = per_call["bare"], per_call["instrumented"]
        added = {k: hooked[k] - bare[k] for k in COUNTS}
        bare_us = bare_pace(mode)
        pace = bare["instructions"] / bare_us  # instructions per µs, the client's own
        misses = added["i1_misses"] + added["d1_misses"]
        bare_misses = bare["i1_misses"] + bare["d1_misses"]
        out[f"{mode}_bare_instructions"] = round(bare["instructions"])
        out[f"{mode}_added_instructions"] = round(added["instructions"])
        out[f"{mode}_ratio"] = round(hooked["instructions"] / bare["instructions"], 5)
        out[f"{mode}_bare_l1_misses"] = round(bare_misses)
        out[f"{mode}_added_l1_misses"] = round(misses)
        out[f"{mode}_l1_misses_ratio"] = round((bare_misses + misses) / bare_misses, 5)
        out[f"{mode}_bare_median_us"] = round(bare_us, 1)
        out[f"{mode}_added_us_at_bare_pace"] = round(added["instructions"] / pace, 2)
        print(
            f"{mode:>15}: bare {bare['instructions']:,.0f} instructions and {bare_misses:,.0f} "
            f"L1 misses a call; instrumented +{added['instructions']:,.0f} instructions "
            f"({added['instructions'] / bare['instructions']:.2%}), +{misses:,.0f} L1 misses "
            f"({misses / bare_misses:.2%}); at the bare call's pace ({bare_us:.0f} µs a call "
            f"here) the instructions are +{added['instructions'] / pace:.2f} µs",
            file=sys.stderr,
        )
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()

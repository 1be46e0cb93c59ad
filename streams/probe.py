"""Where the worker's memory is, every few seconds, as JSON lines: a diagnostic for soaks.

Off unless `GENPULSE_MEMORY_PROBE=<file>` is set (interval `GENPULSE_MEMORY_PROBE_S`,
default 30). Each line has the process figures (smaps_rollup, glibc's mallinfo2), RocksDB's
(shared block cache, memtable budget, per-store properties summed), Python's (allocated
blocks) and the worker's own (parsed rows, tables, hot sessions). With
`GENPULSE_MEMORY_PROBE_TRACE=1` it also runs tracemalloc and lists the source lines whose
Python allocations grew most since the first probe after `GENPULSE_MEMORY_PROBE_FROM_S`
(default 120 s); tracemalloc slows the worker, so figures of such a run are not throughput.
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import time
import tracemalloc
from typing import Any, Protocol

import orjson

from streams import memory, store


class _Part(Protocol):
    store: store.RowStore
    rows: dict[str, Any]
    tables: dict[str, Any]
    state: Any


class MemoryProbe:
    def __init__(self) -> None:
        self.path = os.environ.get("GENPULSE_MEMORY_PROBE")
        self.every = float(os.environ.get("GENPULSE_MEMORY_PROBE_S", "30"))
        self.trace = os.environ.get("GENPULSE_MEMORY_PROBE_TRACE") == "1"
        self.baseline_after = float(os.environ.get("GENPULSE_MEMORY_PROBE_FROM_S", "120"))
        self.began = time.monotonic()
        self.next = self.began + self.every
        self.baseline: tracemalloc.Snapshot | None = None
        if self.path and self.trace:
            tracemalloc.start(1)

    def maybe(self, parts: list[_Part], **extra: int) -> None:
        if not self.path or time.monotonic() < self.next:
            return
        self.next += self.every
        line: dict[str, Any] = {"at_s": round(time.monotonic() - self.began), **extra}
        line.update(memory.process_figures())
        line.update(memory.malloc_figures())
        line.update(store.shared_memory())
        stores: dict[str, int] = {}
        for part in parts:
            for name, value in part.store.memory().items():
                stores[name] = stores.get(name, 0) + value
        line["stores"] = stores
        line["python_blocks"] = sys.getallocatedblocks()
        kinds = collections.Counter(type(o).__name__ for o in gc.get_objects())
        line["python_containers"] = dict(kinds.most_common(6))
        line["parsed_rows"] = sum(len(p.rows) for p in parts)
        line["parsed_tables"] = sum(len(p.tables) for p in parts)
        line["table_values"] = sum(len(t.values) for p in parts for t in p.tables.values())
        bins: dict[str, int] = {}
        for p in parts:
            for key, row in p.rows.items():
                level = key.split(":")[1]  # c:<level>:...
                bins[level] = bins.get(level, 0) + sum(len(s["pos"]) for s in row.sketch.values())
        line["sketch_bins"] = bins
        totals: dict[str, int] = {}  # the running totals' own copies (streams/totals.py)
        for p in parts:
            for (level, _), entry in getattr(p, "totals", {}).items():
                if entry.total is not None:
                    n = sum(len(s["pos"]) for s in entry.total.sketch.values())
                    totals[level] = totals.get(level, 0) + n
        line["total_bins"] = totals
        line["hot_sessions"] = sum(len(p.state.sessions.hot) for p in parts)
        if self.trace:
            line["traced"] = tracemalloc.get_traced_memory()[0]
            if self.baseline is None and line["at_s"] >= self.baseline_after:
                self.baseline = tracemalloc.take_snapshot()
            elif self.baseline is not None:
                diff = tracemalloc.take_snapshot().compare_to(self.baseline, "lineno")
                line["grew"] = [[str(d.traceback[0]), d.size_diff, d.count_diff] for d in diff[:12]]
        with open(self.path, "ab") as f:
            f.write(orjson.dumps(line) + b"\n")

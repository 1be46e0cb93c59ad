"""The sinks process's CPU priority: below the worker's aggregation, always.

Why: the exporters read the same topics as the worker and do per-event work; on a shared
host every CPU second they take in a burst is one the worker's aggregation loses. Niceness
only shrinks their share (nice 10 still took ~30 % of a 2-core box's worker throughput);
SCHED_IDLE gives them only CPU that nothing else wants, so they lag in a burst and catch
up after it.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("genpulse.sinks")


def lower_priority(nice: int, idle: bool) -> str:
    """Apply niceness and, where the OS has it, SCHED_IDLE to this process (and the threads
    it starts later). Returns what was applied, for the start-up log."""
    os.nice(nice)
    if idle and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError as exc:  # a container may forbid it: niceness still applies
            log.warning("SCHED_IDLE refused (%s); running at niceness %d only", exc, nice)
        else:
            return f"SCHED_IDLE, niceness {nice}"
    return f"niceness {nice}"

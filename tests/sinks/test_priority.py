"""`genpulse sinks` takes CPU only when the worker does not want it (SCHED_IDLE, niceness)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = """
import os
from streams.sinks.priority import lower_priority
applied = lower_priority({nice}, {idle})
print(applied, os.sched_getscheduler(0) == os.SCHED_IDLE, os.nice(0))
"""


def run_child(nice: int, idle: bool) -> list[str]:
    code = CHILD.format(nice=nice, idle=idle)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policy")
def test_the_default_is_sched_idle_and_nice() -> None:
    base = os.nice(0)
    words = run_child(10, True)
    assert words[0] == "SCHED_IDLE,"
    assert words[-2:] == ["True", str(min(19, base + 10))]


def test_without_idle_only_niceness_applies() -> None:
    base = os.nice(0)
    words = run_child(5, False)
    assert words[:2] == ["niceness", "5"]
    assert words[-2:] == ["False", str(min(19, base + 5))]

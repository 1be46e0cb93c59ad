"""Process life cycle: exit right after tracking delivers everything; fork() sends nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from producers.settings import GenPulseSettings
from tests.producers.kafka_read import duplicates, read_topic

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, settings: GenPulseSettings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GENPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GENPULSE_TOPIC_PREFIX": settings.topic_prefix,
        "GENPULSE_FOLLOW_BUDGET_STATE": "false",
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_process_exiting_right_after_tracking_delivers_all(settings: GenPulseSettings) -> None:
    done = _run(
        """
        from producers import GenPulse

        pulse = GenPulse.from_env(service="exit-test")
        for i in range(1000):
            pulse.events.track("cache_hit", {"i": i}, session_id=f"s{i % 3}")
        """,
        settings,
    )
    assert done.returncode == 0, done.stderr
    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=1000)
    assert duplicates(received) == {}
    assert sorted(r.value["data"]["i"] for r in received) == list(range(1000))  # type: ignore[index]


def test_fork_parent_and_child_each_deliver_their_own_once(settings: GenPulseSettings) -> None:
    done = _run(
        """
        import os, sys
        from producers import GenPulse

        pulse = GenPulse.from_env(service="fork-test", flush_at=1_000_000)
        track = pulse.events.track
        for i in range(500):  # still buffered when we fork
            track("cache_hit", {"who": "parent", "i": i}, session_id="parent")
        pid = os.fork()
        if pid == 0:
            for i in range(300):
                track("cache_hit", {"who": "child", "i": i}, session_id="child")
            pulse.performance.record_phase_time("analysis", 5.0)  # locks renewed in the child
            assert pulse.costs.get_costs()["calls"] == 0
            sys.exit(0)  # the exit-time flush delivers the child's own events
        for i in range(500, 1000):
            track("cache_hit", {"who": "parent", "i": i}, session_id="parent")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert pulse.flush(60), pulse.stats()
        """,
        settings,
    )
    assert done.returncode == 0, done.stderr
    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=1300)
    assert duplicates(received) == {}
    by_sender = Counter(r.value["data"]["who"] for r in received)  # type: ignore[index]
    assert by_sender == {"parent": 1000, "child": 300}
    parent = sorted(r.value["data"]["i"] for r in received if r.value["session_id"] == "parent")  # type: ignore[index]
    assert parent == list(range(1000))

"""on_budget_threshold against the real worker: one call that takes spend from 40 % to 95 %
of the daily budget hands the callback 50, 80 and 90, in that order, and nothing else."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from producers import GenPulse
from producers.budget import budget_control_record
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.streams.helpers import WorkerProcess, produce, wait_for

pytestmark = pytest.mark.integration

USD = 1_000_000_000
OPUS_INPUT_NANOS = 15_000  # $15 per 1M input tokens


async def test_one_call_crossing_three_thresholds_hands_each_percent_in_order(
    worker_settings: WorkerSettings, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    s = worker_settings
    await ensure_topics(s)
    now = int(time.time() * 1000)
    await produce(
        s.kafka_bootstrap,
        s.topic("control"),
        [budget_control_record("global", "15", [0.5, 0.8, 0.9, 1.0], now)],
    )
    workers.append(WorkerProcess(s, tmp_path, "w0").start())
    pulse = GenPulse(
        service="threshold-test", bootstrap_servers=s.kafka_bootstrap, topic_prefix=s.topic_prefix
    )
    percents: list[float] = []
    lock = threading.Lock()

    def on_threshold(percent: float) -> None:
        with lock:
            percents.append(percent)

    pulse.costs.on_budget_threshold(on_threshold)
    try:

        async def spent(nanos: int) -> bool:
            status = pulse.budget.status("global")
            return status is not None and status.spend_nanousd == nanos

        # 400,000 opus input tokens: $6.00, 40 % of $15 (below every threshold)
        pulse.costs.record_model_call("claude-3-opus-20240229", 400_000, 0, user_id="u1")
        assert pulse.flush(timeout=30)
        await wait_for(lambda: spent(6 * USD), 90, "40 % spent", workers)
        assert pulse.costs.get_costs()["percent_used"] == 40.0
        assert percents == []

        # one call of 550,000 more: $14.25, 95 %
        pulse.costs.record_model_call("claude-3-opus-20240229", 550_000, 0, user_id="u1")
        assert pulse.flush(timeout=30)
        total = (400_000 + 550_000) * OPUS_INPUT_NANOS
        await wait_for(lambda: spent(total), 90, "95 % spent", workers)

        async def three_fired() -> bool:
            return len(percents) >= 3

        await wait_for(three_fired, 30, "three threshold callbacks", workers)
        await asyncio.sleep(1.0)  # room for a wrong fourth (100) or a repeat to show up
        assert percents == [50, 80, 90]
        costs = pulse.costs.get_costs()
        assert costs["daily_budget_usd"] == "15.000000000"
        assert costs["daily_spend_usd"] == "14.250000000"
        assert costs["budget_remaining_usd"] == "0.750000000"
        assert costs["percent_used"] == 95.0
        assert pulse.stats().callback_errors == 0
    finally:
        pulse.close(timeout=5)

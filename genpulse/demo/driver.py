"""Apply a seeded workload to a GenPulse client, as fast as possible or at a steady rate.

from genpulse.demo import drive
result = drive(client, seed=42, sessions=5_000)      # as fast as possible
drive(client, seed=1, duration_s=60, rate=200)       # ~200 events/s for a minute
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from genpulse.demo.workload import (
    Action,
    Approval,
    Measure,
    ModelCall,
    Rating,
    Score,
    Track,
    Workload,
)
from producers import GenPulse
from producers.metric_batch import PHASE_DURATION_MS

Progress = Callable[[int, float], None]
"""Called with (events so far, seconds elapsed) a few times a second."""


@dataclass(frozen=True)
class DriveResult:
    sessions: int
    events: int  # events reported (one per non-Measure action)
    measures: int  # values folded into metric series
    elapsed_s: float


def apply(client: GenPulse, action: Action) -> None:
    """Report one action through the SDK call a real service would use."""
    match action:
        case Track(event_type, session_id, user_id, data):
            client.events.track(event_type, data, session_id=session_id, user_id=user_id)
        case ModelCall():
            client.costs.record_model_call(
                action.model,
                action.input_tokens,
                action.output_tokens,
                action.cache_write_tokens,
                action.cache_read_tokens,
                user_id=action.user_id,
                session_id=action.session_id,
                duration_ms=action.duration_ms,
            )
        case Measure(name, value_ms, tags) if name == PHASE_DURATION_MS:
            client.performance.record_phase_time(tags["phase"], value_ms)
        case Measure(name, value_ms, tags):
            client.performance.record_metric(name, value_ms, "ms", tags or None)
        case Score(score, confidence, session_id, user_id):
            client.quality.record_quality_score(score, confidence, session_id, user_id)
        case Approval(approved, edits_made, session_id, user_id):
            client.quality.record_approval(approved, edits_made, session_id, user_id)
        case Rating("satisfaction", value, session_id, user_id):
            client.quality.record_satisfaction(value, session_id, user_id)
        case Rating(_, value, session_id, user_id):
            client.quality.record_nps(value, session_id, user_id)


def drive(
    client: GenPulse,
    seed: int,
    sessions: int | None = None,
    duration_s: float | None = None,
    rate: float | None = None,
    on_progress: Progress | None = None,
) -> DriveResult:
    """Run sessions of `Workload(seed)` until `sessions` are done or `duration_s` passed.

    `rate` caps events per second (None: as fast as the SDK takes them).
    """
    if sessions is None and duration_s is None:
        raise ValueError("give sessions=, duration_s= or both, or drive() would never end")
    workload = Workload(seed)
    began = time.monotonic()
    last_report = began
    events = measures = done = 0
    while sessions is None or done < sessions:
        now = time.monotonic()
        if duration_s is not None and now - began >= duration_s:
            break
        for action in workload.session():
            apply(client, action)
            if isinstance(action, Measure):
                measures += 1
                continue
            events += 1
            if rate is not None:
                ahead = began + events / rate - time.monotonic()
                if ahead > 0.005:
                    time.sleep(ahead)
        done += 1
        if on_progress is not None and (now := time.monotonic()) - last_report >= 0.2:
            last_report = now
            on_progress(events, now - began)
    elapsed = time.monotonic() - began
    if on_progress is not None:
        on_progress(events, elapsed)
    return DriveResult(sessions=done, events=events, measures=measures, elapsed_s=elapsed)

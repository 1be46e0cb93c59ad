"""Outcome rates per generation: in [0, 1] for any range, shares never above 1 together, the
same whether folded in one pass or in batches, partitions and minutes merged; and equal to
the plain oracle of tests/streams/workload.py (the specification's definitions)."""

from __future__ import annotations

import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import views
from streams.partial import Partial
from streams.partition import PartitionState, Rules
from tests.streams.workload import Oracle

T0 = 1_764_000_000_000
RATES = ("acceptance_rate", "edit_rate", "regeneration_rate", "abandonment_rate", "upgrade_rate")
SHARES = RATES[:4]
KINDS = (
    "generation_started", "generation_completed", "generation_failed", "generation_canceled",
    "uvp_approved", "uvp_edited", "transformation_edited", "benefit_reordered",
    "uvp_regenerated", "model_upgraded", "stream_started", "stream_completed",
)  # fmt: skip


class Rec:
    def __init__(self, offset: int, obj: dict[str, Any]) -> None:
        self.offset, self.timestamp, self.key = offset, obj["timestamp"], None
        self.value = orjson.dumps(obj)


def event(i: int, kind: str, sid: str, ts: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"v": 1, "type": kind, "event_id": f"e{i}", "timestamp": ts, "session_id": sid,
            "user_id": "u", "service": "t", "data": data}  # fmt: skip


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random event orders over a few sessions and minutes (approvals with and without
    edits_made, rejections)."""
    n = draw(st.integers(1, 120))
    out, ts = [], T0
    for i in range(n):
        ts += draw(st.integers(0, 40_000))
        kind = draw(st.sampled_from(KINDS))
        data: dict[str, Any] = {}
        if kind == "uvp_approved":
            data = draw(st.sampled_from([{}, {"edits_made": 0}, {"edits_made": 3},
                                         {"approved": False, "edits_made": 1}]))  # fmt: skip
        out.append(event(i, kind, f"s{draw(st.integers(0, 4))}", ts, data))
    return out


def fold(events: list[dict[str, Any]], partitions: int, batch: int) -> dict[int, Partial]:
    """Sessions split over partitions (as Kafka keys them), folded in batches, every
    partial through its stored form, merged per minute."""
    states = [PartitionState(f"events:{n}", Rules()) for n in range(partitions)]
    records: list[list[Rec]] = [[] for _ in range(partitions)]
    for e in events:
        part = int(e["session_id"][1:]) % partitions
        records[part].append(Rec(len(records[part]), e))
    minutes: dict[int, Partial] = {}
    for state, recs in zip(states, records, strict=True):
        for start in range(0, len(recs), batch):
            out = state.fold_events(recs[start : start + batch], "t", 0)
            for minute, p in out.minutes.items():
                stored = Partial.from_json(orjson.loads(orjson.dumps(p.to_json())))
                minutes.setdefault(minute, Partial()).merge(stored)
    return minutes


def merged(parts: list[Partial]) -> Partial:
    total = Partial()
    for p in parts:
        total.merge(p)
    return total


def check_bounds(q: dict[str, Any]) -> None:
    for name in RATES:
        assert q[name] is None or 0 <= q[name] <= 1, (name, q[name])
    assert sum(q[name] or 0 for name in SHARES) <= 1 + 1e-12
    assert q["open_generations"] >= 0


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(1, 3), st.integers(1, 30), st.randoms())
def test_rates_bounded_and_merge_like_one_pass(
    events: list[dict[str, Any]], partitions: int, batch: int, rnd: random.Random
) -> None:
    one_pass = views.quality(merged(list(fold(events, 1, len(events)).values())))
    minutes = fold(events, partitions, batch)
    ordered = list(minutes.values())
    rnd.shuffle(ordered)
    assert views.quality(merged(ordered)) == one_pass
    check_bounds(one_pass)
    keys = sorted(minutes)
    for m in keys:  # each minute alone, and every range of minutes
        check_bounds(views.quality(minutes[m]))
    a, b = sorted(rnd.sample(range(len(keys) + 1), 2)) if len(keys) > 1 else (0, len(keys))
    check_bounds(views.quality(merged([minutes[m] for m in keys[a:b]])))

    oracle = Oracle()
    for e in events:
        oracle.feed(orjson.dumps(e))
    assert one_pass["generations"] == len(oracle.generations)
    assert one_pass["acceptance_rate"] == oracle.share("approved_without_edit")
    assert one_pass["edit_rate"] == oracle.share("approved_after_edit")
    assert one_pass["regeneration_rate"] == oracle.share("regenerated")
    assert one_pass["abandonment_rate"] == oracle.share("canceled")
    assert one_pass["upgrade_rate"] == oracle.upgrade_rate
    assert one_pass["rejections"] == oracle.rejections


def quality_of(kinds: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    events = [event(i, k, "s0", T0 + 1000 * i, d) for i, (k, d) in enumerate(kinds)]
    return views.quality(merged(list(fold(events, 1, 100).values())))


def test_a_generation_edited_three_times_counts_once() -> None:
    q = quality_of(
        [
            ("generation_started", {}),
            ("generation_completed", {}),
            ("uvp_edited", {}),
            ("transformation_edited", {}),
            ("benefit_reordered", {"to_index": 0}),
            ("uvp_approved", {"edits_made": 3}),
        ]
    )
    assert q["edit_rate"] == 1.0 and q["acceptance_rate"] == 0.0
    assert q["edits"] == 3 and q["edited_generations"] == 1
    assert q["edits_by_kind"] == {"uvp_edited": 1, "transformation_edited": 1,
                                  "benefit_reordered": 1}  # fmt: skip


def test_record_approval_means_what_the_specification_says() -> None:
    started = [("generation_started", {}), ("generation_completed", {})]
    after_edits = quality_of([*started, ("uvp_approved", {"edits_made": 2})])
    assert after_edits["edit_rate"] == 1.0 and after_edits["acceptance_rate"] == 0.0
    clean = quality_of([*started, ("uvp_approved", {"edits_made": 0})])
    assert clean["acceptance_rate"] == 1.0 and clean["edit_rate"] == 0.0
    rejected = quality_of([*started, ("uvp_approved", {"approved": False, "edits_made": 2})])
    assert rejected["edit_rate"] == 0.0 and rejected["acceptance_rate"] == 0.0
    assert rejected["rejections"] == 1 and rejected["open_generations"] == 1


def test_canceled_while_running_and_after_completion_are_abandoned() -> None:
    q = quality_of(
        [
            ("generation_started", {}),
            ("model_upgraded", {"from_tier": "haiku", "to_tier": "opus"}),
            ("generation_canceled", {}),
            ("generation_started", {}),
            ("generation_completed", {}),
            ("generation_canceled", {"reason": "user"}),
        ]
    )
    assert q["generations"] == 2 and q["abandonment_rate"] == 1.0
    assert q["upgrade_rate"] == 0.5
    assert q["upgrades_by_path"] == [{"from_tier": "haiku", "to_tier": "opus", "count": 1}]


def test_stored_rows_without_the_new_fields_still_read() -> None:
    old = {"v": 1, "count": {"generation_completed": 2, "uvp_approved": 1},
           "quality": {"approved_without_edit": 1}}  # fmt: skip
    q = views.quality(Partial.from_json(old))
    assert q["acceptance_rate"] == 0.5 and q["edit_rate"] == 0.0 and q["upgrades_by_path"] == []

"""Pure payload building: Datadog samples and series, the per-generation event, Slack bodies,
and which alert offsets may be committed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from producers.events import EventType
from producers.metric_batch import MetricBatch, MetricSeries
from producers.sketch import new_sketch, sketch_to_wire
from streams.sinks.datadog_events import GenerationTracker, event_body, usd
from streams.sinks.datadog_series import SeriesBoard
from streams.sinks.feeds import OffsetTracker
from streams.sinks.samples import (
    Kind,
    Sample,
    samples_from_event,
    samples_from_metric_batch,
    sketch_values,
    tag,
)
from streams.sinks.webhooks import dedup_key, slack_body
from tests.sinks.test_webhooks import alert
from tests.unit.test_contract import make_event


def test_tags_keep_what_datadog_keeps_and_rewrite_the_rest() -> None:
    assert tag("scope", "user:Alice Smith") == "scope:user:alice_smith"
    assert tag("model", "claude-3.5/sonnet") == "model:claude-3.5/sonnet"
    assert len(tag("k", "x" * 500)) == 2 + 190


def test_unpriced_model_calls_send_no_cost() -> None:
    data = {"model": "mystery", "input_tokens": 1, "output_tokens": 1, "priced": False}
    names = [s.name for s in samples_from_event(make_event(EventType.MODEL_CALLED, data=data), "e")]
    assert names == ["model.calls", "model.tokens", "model.tokens"]


def test_every_event_type_maps_without_error() -> None:
    for kind in EventType:
        for sample in samples_from_event(make_event(kind), "prod"):
            assert sample.tags[:2] == ("service:uvp-generator", "env:prod")


def sample(name: str, kind: Kind, value: float, *tags: str) -> Sample:
    return Sample(name, kind, value, tags, "unit", 0)


def test_series_board_sums_counts_keeps_gauges_and_caps_contexts() -> None:
    board = SeriesBoard("ns", max_contexts=2)
    assert board.add(sample("c", Kind.COUNT, 1, "b:1", "a:1"))
    assert board.add(sample("c", Kind.COUNT, 2, "a:1", "b:1"))  # same context, tags sorted
    assert board.add(sample("g", Kind.GAUGE, 5))
    assert board.add(sample("g", Kind.GAUGE, 6))
    assert not board.add(sample("other", Kind.COUNT, 1))  # a third context
    assert not board.add(sample("d", Kind.DISTRIBUTION, 1))
    first = board.drain(now_s=100, interval_s=10)
    assert first == [
        {
            "metric": "ns.c",
            "type": 1,
            "points": [{"timestamp": 100, "value": 3.0}],
            "tags": ["a:1", "b:1"],
            "interval": 10,
            "unit": "unit",
        },
        {
            "metric": "ns.g",
            "type": 3,
            "points": [{"timestamp": 100, "value": 6.0}],
            "tags": [],
            "unit": "unit",
        },
    ]
    assert [s["metric"] for s in board.drain(now_s=110, interval_s=10)] == ["ns.g"]


@given(st.lists(st.integers(0, 10**15), max_size=50))
def test_usd_is_exact(nanos: list[int]) -> None:
    for n in nanos:
        assert Decimal(usd(n)) * 10**9 == n


def test_a_completed_generation_waits_for_its_score_but_not_forever() -> None:
    tracker = GenerationTracker(quality_wait_s=5, max_sessions=10)
    call = {"model": "m", "input_tokens": 1, "output_tokens": 1, "cost_nanousd": 250}
    for kind, data in [
        (EventType.GENERATION_STARTED, {}),
        (EventType.MODEL_CALLED, call),
        (EventType.MODEL_CALLED, call),
        (EventType.GENERATION_COMPLETED, {"duration_ms": 10}),
    ]:
        tracker.observe(make_event(kind, session_id="a", data=data), now_s=0)
    tracker.observe(make_event(EventType.GENERATION_COMPLETED, session_id="b", data={}), now_s=0)
    assert tracker.due(now_s=1) == []
    tracker.observe(make_event(EventType.QUALITY_SCORED, session_id="a", data={"score": 90}), 2)
    (gen_a,) = tracker.due(now_s=2)
    assert (gen_a.cost_nanousd, gen_a.model_calls, gen_a.quality) == (500, 2, 90.0)
    assert "cost: $0.0000005 over 2 model calls" in event_body(gen_a, "prod")["text"]
    assert [g.session_id for g in tracker.due(now_s=5)] == ["b"]


def test_a_new_generation_in_the_session_hands_out_the_waiting_one() -> None:
    tracker = GenerationTracker(quality_wait_s=60, max_sessions=10)
    tracker.observe(make_event(EventType.GENERATION_COMPLETED, session_id="a"), now_s=0)
    tracker.observe(make_event(EventType.GENERATION_STARTED, session_id="a"), now_s=1)
    assert [g.session_id for g in tracker.due(now_s=1)] == ["a"]  # not lost, not 59 s late
    tracker.observe(make_event(EventType.GENERATION_COMPLETED, session_id="a"), now_s=2)
    assert tracker.due(now_s=61) == []
    assert [g.session_id for g in tracker.due(now_s=62)] == ["a"]
    assert tracker.due(now_s=1000) == []  # each generation once


def test_a_late_score_sends_the_generation_at_once_and_only_once() -> None:
    tracker = GenerationTracker(quality_wait_s=30, max_sessions=10)
    tracker.observe(make_event(EventType.GENERATION_COMPLETED, session_id="a"), now_s=0)
    tracker.observe(make_event(EventType.QUALITY_SCORED, session_id="a", data={"score": 80}), 3)
    (gen,) = tracker.due(now_s=3)
    assert gen.quality == 80.0
    assert tracker.due(now_s=31) == []  # the stale 30 s entry in the heap is skipped


def test_the_tracker_forgets_the_least_recent_session_first() -> None:
    tracker = GenerationTracker(quality_wait_s=0, max_sessions=2)
    for session in ("a", "b", "c"):
        tracker.observe(make_event(EventType.GENERATION_COMPLETED, session_id=session), now_s=0)
    assert [g.session_id for g in tracker.due(now_s=0)] == ["b", "c"]
    assert tracker.evicted == 1


def test_slack_body_marks_resolved_alerts_and_the_plain_key_separates_status() -> None:
    body = slack_body(alert("resolved", severity="critical"))
    assert body["text"].startswith(":white_check_mark: [RESOLVED] global spend")
    assert body["blocks"][0]["text"]["text"].startswith("[RESOLVED]")
    assert dedup_key(alert()) != dedup_key(alert("resolved"))


@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=30),
    st.randoms(use_true_random=False),
)
def test_commits_never_pass_an_unsettled_alert(waiting: list[int], rnd: object) -> None:
    tp = TopicPartition("alerts", 0)
    tracker = OffsetTracker()
    pending = []
    for offset, count in enumerate(waiting):
        tracker.add(tp, offset, count)
        pending += [offset] * count
    rnd.shuffle(pending)  # type: ignore[attr-defined]
    while pending:
        offset = pending.pop()
        tracker.done(tp, offset)
        committed = tracker.committable()[tp]
        assert all(o >= committed for o in pending)
    assert tracker.committable() == {tp: len(waiting)}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=12), st.text(min_size=1))
def test_any_alert_record_makes_a_slack_message(fields: dict[str, object], alert_id: str) -> None:
    body = slack_body({**fields, "id": alert_id})
    assert body["text"] and len(body["text"]) <= 3000
    assert len(body["blocks"][0]["text"]["text"]) <= 150
    assert all(len(f["text"]) <= 2000 for f in body["blocks"][1]["fields"])


def batch_of(series: list[tuple[str, dict[str, str], list[float]]]) -> MetricBatch:
    out = []
    for name, tags, values in series:
        sketch = new_sketch()
        for value in values:
            sketch.add(value)
        out.append(
            MetricSeries(
                name=name,
                unit="ms",
                tags=tags,
                count=len(values),
                sum=sum(values),
                min=min(values),
                max=max(values),
                sketch=sketch_to_wire(sketch),
            )
        )
    return MetricBatch(
        batch_id="b1",
        service="uvp",
        start_ms=1_764_130_000_000,
        end_ms=1_764_130_001_000,
        series=out,
    )


def test_metric_batch_series_become_one_sample_per_observation() -> None:
    batch = batch_of(
        [
            ("phase_duration_ms", {"phase": "analysis"}, [812.5, 812.5, 100.0]),
            ("timer_duration_ms", {"label": "db"}, [0.0, 3.0]),
            ("my-metric", {}, [7.0]),
        ]
    )
    samples = samples_from_metric_batch(batch, "prod")
    assert [(s.name, s.tags[2:], s.unit) for s in samples][:1] == [
        ("phase.duration", ("phase:analysis",), "millisecond")
    ]
    assert {s.name for s in samples} == {"phase.duration", "timer.duration", "custom.my_metric"}
    assert all(
        s.tags[:2] == ("service:uvp", "env:prod") and s.timestamp_s == 1_764_130_001
        for s in samples
    )
    phase = sorted(s.value for s in samples if s.name == "phase.duration")
    assert phase == [
        pytest.approx(100, rel=0.01),
        pytest.approx(812.5, rel=0.01),
        pytest.approx(812.5, rel=0.01),
    ]
    assert sorted(s.value for s in samples if s.name == "timer.duration")[0] == 0.0


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_sketch_values_keep_count_and_one_percent(values: list[float]) -> None:
    sketch = new_sketch()
    for value in values:
        sketch.add(value)
    expanded = sorted(v for v, n in sketch_values(sketch_to_wire(sketch)) for _ in range(n))
    assert len(expanded) == len(values)
    for got, want in zip(expanded, sorted(values), strict=True):
        assert abs(got - want) <= 0.0101 * abs(want) + 1e-9

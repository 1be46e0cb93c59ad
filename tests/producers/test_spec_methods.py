"""The specification's SDK methods return its shapes (this process's view), bad data is
caught in track(), unknown settings are named, and interpreter exit is bounded."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest

from genpulse.devservices.ports import free_port
from producers import GenPulse
from producers.settings import GenPulseSettings
from tests.producers.conftest import ClientFactory
from tests.producers.kafka_read import read_topic

SPEC_PERFORMANCE_FIELDS = {
    "phase1_duration_ms", "phase2_duration_ms", "phase3_duration_ms", "phase4_duration_ms",
    "total_duration_ms", "time_to_first_byte_ms", "time_to_first_content_ms",
    "time_to_interactive_ms", "time_to_complete_ms", "cache_hits", "cache_misses",
    "cache_hit_rate", "requests_per_second", "concurrent_requests", "queue_depth",
    "p50_duration_ms", "p95_duration_ms", "p99_duration_ms",
}  # fmt: skip


def test_get_metrics_is_the_specifications_performance_metrics(make_client: ClientFactory) -> None:
    client = make_client()
    perf, track = client.performance, client.events.track
    for phase, ms in (("extraction", 100.0), ("analysis", 200.0), ("synthesis", 300.0)):
        perf.record_phase_time(phase, ms)
        perf.record_phase_time(phase, ms * 3)
    for ms in range(100, 10_001, 100):  # 100 generations, 100 ms .. 10 s
        perf.record_generation_time(float(ms))
    perf.record_metric("time_to_first_byte_ms", 420.0, "ms")
    for kind in ["cache_hit"] * 3 + ["cache_miss"] + ["generation_started"] * 3:
        track(kind, session_id="s-1")
    track("generation_completed", {"duration_ms": 1000.0}, session_id="s-1")
    track("queue_depth_sampled", {"depth": 7})

    metrics = perf.get_metrics()
    assert set(metrics) == SPEC_PERFORMANCE_FIELDS
    assert metrics["phase1_duration_ms"] == 200.0 and metrics["phase3_duration_ms"] == 600.0
    assert metrics["phase4_duration_ms"] is None  # never measured
    assert metrics["total_duration_ms"] == 5050.0
    assert metrics["time_to_first_byte_ms"] == 420.0 and metrics["time_to_complete_ms"] is None
    assert (metrics["cache_hits"], metrics["cache_misses"], metrics["cache_hit_rate"]) == (
        3,
        1,
        0.75,
    )
    assert metrics["concurrent_requests"] == 2 and metrics["queue_depth"] == 7
    assert metrics["requests_per_second"] > 0
    p50, p99 = metrics["p50_duration_ms"], metrics["p99_duration_ms"]
    # DDSketch: the value at rank q * (n - 1), within 1 % relative error
    assert p50 is not None and abs(p50 - 5000.0) <= 50.0
    assert p99 is not None and abs(p99 - 9900.0) <= 99.0
    assert perf.get_phase_metrics()["analysis"]["avg_duration_ms"] == 400.0
    summary = perf.get_summary()
    assert summary["metrics"]["cache_hits"] == 3 and summary["generation"] is not None


def test_export_to_datadog_sends_gauges_to_a_dogstatsd_socket(make_client: ClientFactory) -> None:
    client = make_client(service="dd-test")
    client.performance.record_phase_time("extraction", 150.0)
    client.events.track("cache_hit")
    agent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    agent.bind(("127.0.0.1", 0))
    agent.settimeout(5)
    try:
        sent = client.performance.export_to_datadog(
            "127.0.0.1", agent.getsockname()[1], tags={"region": "eu"}
        )
        datagrams = [agent.recv(65536).decode() for _ in range(sent)]
    finally:
        agent.close()
    assert sent == len(datagrams) >= 5
    by_name = {d.split(":", 1)[0]: d for d in datagrams}
    assert by_name["genpulse.sdk.phase1_duration_ms"].startswith(
        "genpulse.sdk.phase1_duration_ms:150.0|g|#"
    )
    assert "service:dd-test" in by_name["genpulse.sdk.cache_hits"]
    assert "region:eu" in by_name["genpulse.sdk.cache_hits"]
    assert "genpulse.sdk.phase2_duration_ms" not in by_name  # None fields are skipped


def test_get_costs_has_the_specifications_per_tier_fields(make_client: ClientFactory) -> None:
    client = make_client()
    calls = [
        ("claude-3-haiku-20240307", 1000, 200, "alice", "haiku"),
        ("claude-3-haiku-20240307", 3000, 100, "bob", "haiku"),
        ("claude-3-5-sonnet-20241022", 1200, 400, "alice", "sonnet"),
        ("claude-3-opus-20240229", 500, 50, None, "opus"),
    ]
    nanos = {"haiku": 0, "sonnet": 0, "opus": 0}
    for model, tokens_in, tokens_out, user, tier in calls:
        usd = client.costs.record_model_call(model, tokens_in, tokens_out, user_id=user)
        assert usd is not None and usd > 0
        nanos[tier] += int(usd * 1_000_000_000)

    costs = client.costs.get_costs()
    assert (costs["haiku_calls"], costs["sonnet_calls"], costs["opus_calls"]) == (2, 1, 1)
    assert costs["total_calls"] == costs["calls"] == 4
    assert costs["haiku_tokens"] == {"input": 4000, "output": 300}
    assert costs["opus_tokens"] == {"input": 500, "output": 50}
    for tier in ("haiku", "sonnet", "opus"):  # exactly the sum of what each call returned
        assert costs[f"{tier}_cost_nanousd"] == nanos[tier]  # type: ignore[literal-required]
    assert costs["haiku_cost_usd"] == str(Decimal(nanos["haiku"]).scaleb(-9))
    total = costs["haiku_cost_nanousd"] + costs["sonnet_cost_nanousd"] + costs["opus_cost_nanousd"]
    assert costs["total_cost_nanousd"] == total
    assert costs["user_count"] == 2
    assert costs["cost_per_user_nanousd"] == (total - costs["opus_cost_nanousd"]) // 2
    assert costs["average_tokens_per_user"] == (1200 + 3100 + 1600) / 2
    assert costs["daily_budget_usd"] is None and costs["percent_used"] is None  # none published
    assert costs["by_model"]["claude-3-opus-20240229"]["tier"] == "opus"  # earlier fields kept

    daily = client.costs.get_daily_costs()
    assert daily["date"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert daily["total_calls"] == 4 and daily["total_cost_nanousd"] == total
    assert daily["by_tier"]["haiku"]["calls"] == 2 and daily["user_count"] == 2


def test_quality_rates_are_per_generation_and_a_rejection_is_not_an_edit(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    client = make_client()
    quality, track = client.quality, client.events.track
    for i in range(10):
        track("generation_completed", session_id=f"s-{i}")
    quality.record_approval(True, 0, session_id="s-0")  # approved without edits
    quality.record_approval(True, 0, session_id="s-1")
    quality.record_approval(True, 2, session_id="s-2")  # approved after edits
    track("uvp_edited", session_id="s-3")
    track("benefit_reordered", session_id="s-3")
    quality.record_approval(True, 0, session_id="s-3")  # edited in its session, then approved
    quality.record_approval(False, 3, session_id="s-4")  # rejected: not an edit
    track("uvp_regenerated", session_id="s-5")
    quality.record_user_action("abandoned", session_id="s-6")
    quality.record_quality_score(95, confidence=0.9)
    quality.record_quality_score(60, confidence=0.5)
    quality.record_satisfaction(5)
    quality.record_satisfaction(3)
    for score in (10, 9, 8, 3):
        quality.record_nps(score)

    metrics = quality.get_quality_metrics()
    assert quality.get_acceptance_rate() == metrics["acceptance_rate"] == 0.2
    assert quality.get_edit_rate() == metrics["edit_rate"] == 0.2
    assert metrics["regeneration_rate"] == 0.1
    assert metrics["abandonment_rate"] == 0.1  # the abandon; the rejection is no outcome
    assert (metrics["rejections"], metrics["abandonments"]) == (1, 1)
    assert metrics["score_distribution"] == {"excellent": 1, "good": 0, "fair": 1, "poor": 0}
    assert metrics["average_quality_score"] == 77.5 and metrics["low_confidence_count"] == 1
    assert metrics["user_satisfaction"] == 4.0
    assert metrics["satisfaction_distribution"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert (metrics["nps_promoters"], metrics["nps_passives"], metrics["nps_detractors"]) == (
        2,
        1,
        1,
    )
    assert metrics["nps"] == 25.0
    to_approval = metrics["time_to_approval_ms"]
    assert to_approval is not None and to_approval >= 0

    assert client.flush(timeout=30)
    records = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=27)
    rejection = [r.value for r in records if r.value["session_id"] == "s-4"]
    assert [(e["type"], e["data"]) for e in rejection] == [
        ("generation_completed", {}),
        ("uvp_approved", {"edits_made": 3, "approved": False}),
    ]


def test_get_events_has_the_specifications_event_shape(make_client: ClientFactory) -> None:
    client = make_client()
    client.events.track("profile_selected", {"profile_id": "p1"}, session_id="s", user_id="u")
    (event,) = client.events.get_events()
    assert set(event) == {"type", "timestamp", "session_id", "user_id", "data"}
    assert event["type"] == "profile_selected" and event["data"] == {"profile_id": "p1"}
    assert abs(event["timestamp"] - time.time() * 1000) < 60_000


def test_track_catches_bad_data_where_it_is_made(
    make_client: ClientFactory, settings: GenPulseSettings, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    caplog.set_level(logging.WARNING, logger="genpulse.sdk")
    track = client.events.track
    for _ in range(3):
        track("phase_completed", {"duration_ms": 5.0})  # no phase
        track("phase_completed")  # no data at all
        track("phase_completed", {"phase": "analysis", "duration_ms": -1})
        track("satisfaction_rated", {"rating": 6})
        track("generation_completed", {"duration_ms": 3 * 86_400_000})  # three days
        track("stream_completed", {"duration_ms": 2 * 86_400_000})  # free-form, still absurd
    track("phase_completed", {"phase": "analysis", "duration_ms": 5})  # good data flows
    track("generation_completed", {"duration_ms": "12.5"})  # lax but the decoder accepts it

    assert client.flush(timeout=30)
    stats = client.stats()
    assert stats.invalid == {"missing_field": 6, "invalid_field": 6, "absurd_value": 6}
    warned = [r.getMessage() for r in caplog.records if "stats().invalid" in r.getMessage()]
    assert len(warned) == 3, warned
    assert any("phase_completed: field 'data.phase' is required" in w for w in warned)
    assert stats.sent == 2
    records = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=2)
    assert [r.value["type"] for r in records] == ["phase_completed", "generation_completed"]


def test_an_unknown_setting_is_named_with_the_closest_valid_one() -> None:
    with pytest.raises(TypeError, match="unknown setting 'flush_att'; did you mean 'flush_at'"):
        GenPulse(service="x", flush_att=5)
    with pytest.raises(TypeError, match="unknown setting 'zzz'"):
        GenPulse(service="x", zzz=1)


EXITING = """
import time
from producers import GenPulse
pulse = GenPulse(service="exit-test", bootstrap_servers="127.0.0.1:{port}",
                 follow_budget_state=False{extra})
for i in range(5):
    pulse.events.track("cache_hit", {{"i": i}})
print("tracked", flush=True)
"""


@pytest.mark.parametrize(("extra", "limit_s"), [("", 2.0), (", exit_timeout_s=0.5", 0.5)])
def test_exit_with_kafka_unreachable_is_bounded_and_says_what_was_lost(
    extra: str, limit_s: float
) -> None:
    script = textwrap.dedent(EXITING.format(port=free_port(), extra=extra))
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "tracked\n"
    began = time.monotonic()
    _, stderr = child.communicate(timeout=60)
    took = time.monotonic() - began
    assert child.returncode == 0
    assert "5 events not delivered at interpreter exit" in stderr, stderr
    assert f"unreachable for {limit_s:.1f} s" in stderr
    # the exit waits its limit, not the 10 s of close(); generous slack for a loaded machine
    assert took < limit_s + 3.0, f"exit took {took:.1f}s"

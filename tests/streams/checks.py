"""Compare what MetricsReader shows with the oracle's plain-Python figures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streams.reader import MetricsReader
from tests.streams.workload import EDIT_KINDS, Oracle, quantile_ok


async def assert_matches(
    reader: MetricsReader,
    o: Oracle,
    start: int,
    end: int,
    series: dict[str, list[float]] | None = None,
    metric_batches: int = 0,
) -> None:
    """`series`: the measured values per series name when they were sent as metric series
    (then shares within target are checked to the sketch's bucket width)."""
    values_of = o.values if series is None else series
    summary = await reader.summary(start, end)
    assert summary["events"] == sum(o.count.values()) + metric_batches
    assert summary["total_generations"] == o.count["generation_started"]
    finished = sum(o.count[k] for k in ("generation_completed", "generation_failed"))
    finished += o.count["generation_canceled"]
    assert summary["success_rate"] == o.count["generation_completed"] / finished

    costs = await reader.costs(start, end)
    assert costs["total_cost_nanousd"] == o.total_cost
    assert costs["unpriced_calls"] == o.unpriced
    assert costs["total_calls"] == sum(o.calls_by_model.values())
    assert costs["total_input_tokens"] == o.tokens["input_tokens"]
    assert costs["total_output_tokens"] == o.tokens["output_tokens"]
    assert {m["model"]: m["cost_nanousd"] for m in costs["by_model"]} == {
        m: o.cost_by_model.get(m, 0) for m in o.calls_by_model
    }
    for tier in ("haiku", "sonnet", "opus"):
        expected = o.by_tier[tier]
        assert costs[f"{tier}_calls"] == expected["calls"], tier
        assert costs[f"{tier}_tokens"] == {"input": expected["input"], "output": expected["output"]}
        assert costs[f"{tier}_cost_nanousd"] == expected["cost"], tier
    assert costs["user_count"] == len(o.tokens_by_user)
    for row in costs["by_user"]:
        assert row["cost_nanousd"] == o.cost_by_user[row["user_id"]]
    expected_per_user = sum(o.cost_by_user.values()) / len(o.tokens_by_user)
    assert abs(costs["cost_per_user_nanousd"] - expected_per_user) <= 0.5
    assert costs["average_tokens_per_user"] == sum(o.tokens_by_user.values()) / len(
        o.tokens_by_user
    )

    perf = await reader.performance(start, end)
    assert perf["phases_started"] == {
        ph: o.phases_started[ph] for ph in ("extraction", "analysis", "synthesis", "enhancement")
    }
    for phase in ("extraction", "analysis", "synthesis", "enhancement"):
        values = values_of.get(f"phase_duration_ms:{phase}", [])
        got = perf["phases"][phase]
        assert got["count"] == len(values)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert quantile_ok(values, q, got[f"{name}_duration_ms"]), (phase, name)
    for label, target in (
        ("time_to_first_byte", 500),
        ("time_to_first_content", 2000),
        ("time_to_interactive", 7000),
        ("time_to_complete", 15000),
    ):
        values = values_of.get(f"{label}_ms", [])
        got = perf[label]
        assert got["count"] == len(values)
        exact = sum(v <= target for v in values)
        slack = 0 if series is None else sum(target / 1.02 <= v <= target * 1.02 for v in values)
        assert abs(got["within_target_count"] - exact) <= slack, label
        assert quantile_ok(values, 0.95, got["p95_ms"]), label
    assert perf["cache_hits"] == o.count["cache_hit"]
    assert perf["cache_misses"] == o.count["cache_miss"]
    streams = perf["streams"]
    assert streams["started"] == o.count["stream_started"]
    assert streams["completed"] == o.count["stream_completed"]
    assert streams["chunks"] == o.stream_chunks
    for key, series in (
        ("duration", "stream_duration_ms"),
        ("time_to_first_chunk", "stream_time_to_first_chunk_ms"),
    ):
        values = o.values.get(series, [])
        assert streams[key]["count"] == len(values), key
        suffix = "duration_ms" if key == "duration" else "ms"
        assert quantile_ok(values, 0.95, streams[key][f"p95_{suffix}"]), key
    durations = values_of.get("generation_duration_ms", [])
    assert perf["total"]["count"] == len(durations)
    assert quantile_ok(durations, 0.99, perf["p99_duration_ms"])

    quality = await reader.quality(start, end)
    started = o.count["generation_started"]
    assert quality["scored_count"] == len(o.scores)
    assert abs(quality["average_score"] - sum(o.scores) / len(o.scores)) < 1e-6
    assert quality["distribution"] == {
        "excellent": sum(s >= 90 for s in o.scores),
        "good": sum(70 <= s < 90 for s in o.scores),
        "fair": sum(50 <= s < 70 for s in o.scores),
        "poor": sum(s < 50 for s in o.scores),
    }
    outcomes = o.outcomes()
    assert quality["generations"] == len(o.generations)
    assert quality["approved_without_edit"] == outcomes["approved_without_edit"]
    assert quality["approved_after_edit"] == outcomes["approved_after_edit"]
    assert quality["regenerated_generations"] == outcomes["regenerated"]
    assert quality["canceled_generations"] == outcomes["canceled"]
    assert quality["open_generations"] == outcomes[None]
    assert quality["acceptance_rate"] == o.share("approved_without_edit")
    assert quality["edit_rate"] == o.share("approved_after_edit")
    assert quality["regeneration_rate"] == o.share("regenerated")
    assert quality["abandonment_rate"] == o.share("canceled")
    assert quality["upgrade_rate"] == o.upgrade_rate
    assert quality["edited_generations"] == sum(g["edits"] > 0 for g in o.generations)
    assert quality["edits_by_kind"] == {k: o.count[k] for k in EDIT_KINDS}
    assert quality["rejections"] == o.rejections
    assert quality["canceled"] == o.count["generation_canceled"]
    assert {(u["from_tier"], u["to_tier"]): u["count"] for u in quality["upgrades_by_path"]} == (
        dict(o.upgrade_paths)
    )
    selected, deselected = o.count["profile_selected"], o.count["profile_deselected"]
    assert quality["profile_selections"] == selected
    assert quality["profile_deselections"] == deselected
    assert quality["net_profile_selections_per_generation"] == (selected - deselected) / started
    assert quality["satisfaction_distribution"] == {
        str(r): o.satisfaction.count(r) for r in range(1, 6)
    }
    assert quality["nps_promoters"] == sum(s >= 9 for s in o.nps)
    assert quality["nps_passives"] == sum(7 <= s <= 8 for s in o.nps)
    assert quality["nps_detractors"] == sum(s <= 6 for s in o.nps)
    for name, q in (("median", 0.5), ("p95", 0.95), ("p99", 0.99)):
        got = quality[f"{name}_time_to_approval_ms"]
        assert quantile_ok(o.time_to_approval, q, got), name
    assert quality["low_confidence_count"] == sum(c < 0.7 for c in o.confidences)
    assert quality["average_satisfaction"] == sum(o.satisfaction) / len(o.satisfaction)
    promoters = sum(s >= 9 for s in o.nps)
    detractors = sum(s <= 6 for s in o.nps)
    assert quality["nps"] == 100.0 * (promoters - detractors) / len(o.nps)

    health = await reader.health(start, end)
    assert health["generations_failed"] == o.count["generation_failed"]
    assert health["error_rate"] == o.count["generation_failed"] / o.count["generation_started"]
    assert health["errors_by_type"] == dict(sorted(o.errors_by_type.items()))
    assert health["retries"] == {
        "attempted": o.count["retry_attempted"],
        "succeeded": o.count["retry_succeeded"],
        "failed": o.count["retry_failed"],
        "failed_attempts": o.retry_failed_attempts,
    }
    assert health["generations_canceled"] == o.count["generation_canceled"]
    assert health["phase_failures"] == o.count["phase_failed"]
    assert health["phase_failures_by_phase"] == {
        ph: o.phase_failures[ph] for ph in ("extraction", "analysis", "synthesis", "enhancement")
    }
    assert health["fallbacks"] == o.count["fallback_triggered"]
    assert health["dead_letters"] == o.dead


class WorkloadBreaker:
    """The workload's own "sonnet" breaker opens many times and never closes: one alert
    episode, named after whichever of its opens the controller saw first (partitions
    interleave). `split` checks that episode and returns the other alerts."""

    PREFIX = "rule:breakers:breaker:sonnet:"

    def __init__(self, events: Iterable[dict[str, Any]]) -> None:
        self.opens = {
            str(e["timestamp"])
            for e in events
            if e["type"] == "circuit_breaker_opened" and e["data"]["name"] == "sonnet"
        }

    @property
    def alerts(self) -> int:
        return 1 if self.opens else 0

    def split(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        theirs = [p for p in pairs if p[0].startswith(self.PREFIX)]
        assert len(theirs) == self.alerts, theirs
        assert all(p[1] == "fired" and p[0][len(self.PREFIX) :] in self.opens for p in theirs)
        return [p for p in pairs if not p[0].startswith(self.PREFIX)]

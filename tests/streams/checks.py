"""Compare what MetricsReader shows with the oracle's plain-Python figures."""

from __future__ import annotations

from streams.reader import MetricsReader
from tests.streams.workload import Oracle, quantile_ok


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
    assert costs["user_count"] == len(o.tokens_by_user)
    for row in costs["by_user"]:
        assert row["cost_nanousd"] == o.cost_by_user[row["user_id"]]
    expected_per_user = sum(o.cost_by_user.values()) / len(o.tokens_by_user)
    assert abs(costs["cost_per_user_nanousd"] - expected_per_user) <= 0.5
    assert costs["average_tokens_per_user"] == sum(o.tokens_by_user.values()) / len(
        o.tokens_by_user
    )

    perf = await reader.performance(start, end)
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
    durations = values_of.get("generation_duration_ms", [])
    assert perf["total"]["count"] == len(durations)
    assert quantile_ok(durations, 0.99, perf["p99_duration_ms"])

    quality = await reader.quality(start, end)
    completed = o.count["generation_completed"]
    assert quality["scored_count"] == len(o.scores)
    assert abs(quality["average_score"] - sum(o.scores) / len(o.scores)) < 1e-6
    assert quality["distribution"] == {
        "excellent": sum(s >= 90 for s in o.scores),
        "good": sum(70 <= s < 90 for s in o.scores),
        "fair": sum(50 <= s < 70 for s in o.scores),
        "poor": sum(s < 50 for s in o.scores),
    }
    assert quality["approved_without_edit"] == o.approved_without_edit
    assert quality["acceptance_rate"] == o.approved_without_edit / completed
    assert quality["edit_rate"] == o.count["uvp_edited"] / completed
    assert quality["regeneration_rate"] == o.count["uvp_regenerated"] / completed
    started = o.count["generation_started"]
    assert quality["abandonment_rate"] == o.count["generation_canceled"] / started
    assert quality["upgrade_rate"] == o.count["model_upgraded"] / completed
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
    }
    assert health["fallbacks"] == o.count["fallback_triggered"]
    assert health["dead_letters"] == o.dead

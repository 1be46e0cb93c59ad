"""What the API shows, derived from merged partials and live states (pure functions).

Every figure is defined in docs/metrics.md; rates are 0..1 and None when the denominator is
zero; money is `*_nanousd` (exact int) plus `*_usd` (decimal string); durations are ms.
"""

from __future__ import annotations

from typing import Any

from producers.contract import PHASES
from streams import sketches
from streams.money import ratio_usd, usd
from streams.partial import Partial, Targets

QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
MARKS: tuple[tuple[str, str], ...] = (
    ("time_to_first_byte", "time_to_first_byte_ms"),
    ("time_to_first_content", "time_to_first_content_ms"),
    ("time_to_interactive", "time_to_interactive_ms"),
    ("time_to_complete", "time_to_complete_ms"),
)


def rate(numerator: float, denominator: float) -> float | None:
    return None if not denominator else numerator / denominator


def duration_stats(sketch: sketches.Sketch | None, suffix: str = "duration_ms") -> dict[str, Any]:
    """count, average and p50/p95/p99 of one series (1 % relative error on percentiles)."""
    s = sketch or sketches.empty()
    out: dict[str, Any] = {"count": int(s["count"])}
    out[f"average_{suffix}"] = s["sum"] / s["count"] if s["count"] else None
    for name, q in QUANTILES:
        out[f"{name}_{suffix}"] = sketches.quantile(s, q)
    out[f"max_{suffix}"] = s["max"] if s["count"] else None
    return out


def merge_live(lives: list[dict[str, Any]]) -> dict[str, Any]:
    """One view of every partition's current state (gauges are per partition: they add)."""
    in_flight = 0
    queue: dict[str, list[int]] = {}
    breakers: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    for live in lives:
        in_flight += int(live.get("in_flight", 0))
        for service, (depth, at_ms) in live.get("queue_depth", {}).items():
            if service not in queue or queue[service][1] < at_ms:
                queue[service] = [depth, at_ms]
        for name, state in live.get("breakers", {}).items():
            if name not in breakers or breakers[name]["since_ms"] < state["since_ms"]:
                breakers[name] = state
        errors.extend(live.get("errors", []))
    errors.sort(key=lambda e: e["time_ms"], reverse=True)
    return {
        "in_flight": in_flight,
        "queue_depth": sum(d for d, _ in queue.values()),
        "queue_depth_by_service": {s: d for s, (d, _) in sorted(queue.items())},
        "breakers": [{"name": n, **breakers[n]} for n in sorted(breakers)],
        "errors": errors,
    }


def performance(
    p: Partial, live: dict[str, Any], seconds: float, targets: Targets
) -> dict[str, Any]:
    c = p.count
    total = duration_stats(p.sketch.get("generation_duration_ms"))
    out: dict[str, Any] = {
        "phases": {ph: duration_stats(p.sketch.get(f"phase_duration_ms:{ph}")) for ph in PHASES},
        "total": total,
        "p50_duration_ms": total["p50_duration_ms"],
        "p95_duration_ms": total["p95_duration_ms"],
        "p99_duration_ms": total["p99_duration_ms"],
    }
    target_of = targets.as_dict()
    for label, series in MARKS:
        stats = duration_stats(p.sketch.get(series), "ms")
        stats["target_ms"] = target_of[series]
        stats["within_target_count"] = p.within.get(series, 0)
        stats["within_target_rate"] = rate(p.within.get(series, 0), stats["count"])
        out[label] = stats
    hits, misses = c.get("cache_hit", 0), c.get("cache_miss", 0)
    out["timers"] = {
        name.split(":", 1)[1]: duration_stats(s)
        for name, s in sorted(p.sketch.items())
        if name.startswith("timer_duration_ms:")
    }
    out["model_calls"] = duration_stats(p.sketch.get("model_call_duration_ms"))
    out.update(
        cache_hits=hits,
        cache_misses=misses,
        cache_hit_rate=rate(hits, hits + misses),
        generations_started=c.get("generation_started", 0),
        requests_per_second=c.get("generation_started", 0) / seconds if seconds > 0 else 0.0,
        concurrent_requests=live["in_flight"],
        queue_depth=live["queue_depth"],
        queue_depth_by_service=live["queue_depth_by_service"],
    )
    return out


def costs(p: Partial, top_users: int = 100) -> dict[str, Any]:
    totals = {
        k: 0
        for k in (
            "calls",
            "input_tokens",
            "output_tokens",
            "cache_write_tokens",
            "cache_read_tokens",
            "cost_nanousd",
            "unpriced_calls",
        )
    }
    models = []
    for model in sorted(p.models):
        row = p.models[model]
        for k in totals:
            totals[k] += row[k]
        models.append(
            {
                "model": model,
                "tier": row["tier"],
                "calls": row["calls"],
                "input_tokens": row["input_tokens"],
                "output_tokens": row["output_tokens"],
                "cache_write_tokens": row["cache_write_tokens"],
                "cache_read_tokens": row["cache_read_tokens"],
                "cost_nanousd": row["cost_nanousd"],
                "cost_usd": usd(row["cost_nanousd"]),
                "unpriced_calls": row["unpriced_calls"],
            }
        )
    callers = {u: r for u, r in p.users.items() if r["calls"]}
    user_cost = sum(r["cost_nanousd"] for r in callers.values())
    user_tokens = sum(r["tokens"] for r in callers.values())
    per_user_usd, per_user_nanos = ratio_usd(user_cost, len(callers))
    ranked = sorted(callers.items(), key=lambda kv: (-kv[1]["cost_nanousd"], kv[0]))
    return {
        "total_calls": totals["calls"],
        "total_input_tokens": totals["input_tokens"],
        "total_output_tokens": totals["output_tokens"],
        "total_cache_write_tokens": totals["cache_write_tokens"],
        "total_cache_read_tokens": totals["cache_read_tokens"],
        "total_tokens": totals["input_tokens"] + totals["output_tokens"],
        "total_cost_nanousd": totals["cost_nanousd"],
        "total_cost_usd": usd(totals["cost_nanousd"]),
        "unpriced_calls": totals["unpriced_calls"],
        "by_model": models,
        "user_count": len(callers),
        "by_user": [
            {
                "user_id": u,
                "calls": r["calls"],
                "tokens": r["tokens"],
                "cost_nanousd": r["cost_nanousd"],
                "cost_usd": usd(r["cost_nanousd"]),
            }
            for u, r in ranked[:top_users]
        ],
        "cost_per_user_nanousd": per_user_nanos,
        "cost_per_user_usd": per_user_usd,
        "average_tokens_per_user": rate(user_tokens, len(callers)),
    }


def quality(p: Partial) -> dict[str, Any]:
    q, c = p.quality, p.count
    completed = c.get("generation_completed", 0)
    started = c.get("generation_started", 0)
    nps_n = q["nps_count"]
    approval = p.sketch.get("time_to_approval_ms")
    first_edit = p.sketch.get("time_to_first_edit_ms")
    return {
        "scored_count": int(q["score_count"]),
        "average_score": rate(q["score_sum"], q["score_count"]),
        "distribution": {k: int(q[k]) for k in ("excellent", "good", "fair", "poor")},
        "generations_completed": completed,
        "approvals": c.get("uvp_approved", 0),
        "approved_without_edit": int(q["approved_without_edit"]),
        "edits": c.get("uvp_edited", 0),
        "regenerations": c.get("uvp_regenerated", 0),
        "abandonments": c.get("generation_canceled", 0),
        "upgrades": c.get("model_upgraded", 0),
        "acceptance_rate": rate(q["approved_without_edit"], completed),
        "edit_rate": rate(c.get("uvp_edited", 0), completed),
        "regeneration_rate": rate(c.get("uvp_regenerated", 0), completed),
        "abandonment_rate": rate(c.get("generation_canceled", 0), started),
        "upgrade_rate": rate(c.get("model_upgraded", 0), completed),
        "average_confidence": rate(q["confidence_sum"], q["confidence_count"]),
        "low_confidence_count": int(q["low_confidence"]),
        "median_time_to_approval_ms": sketches.quantile(approval, 0.5) if approval else None,
        "median_time_to_first_edit_ms": sketches.quantile(first_edit, 0.5) if first_edit else None,
        "satisfaction_count": int(q["satisfaction_count"]),
        "average_satisfaction": rate(q["satisfaction_sum"], q["satisfaction_count"]),
        "nps_count": int(nps_n),
        "nps": None if not nps_n else 100.0 * (q["promoters"] - q["detractors"]) / nps_n,
        "content_copied": c.get("content_copied", 0),
        "content_exported": c.get("content_exported", 0),
    }


def health(p: Partial, live: dict[str, Any], recent: int = 20) -> dict[str, Any]:
    c = p.count
    started, failed = c.get("generation_started", 0), c.get("generation_failed", 0)
    return {
        "generations_started": started,
        "generations_failed": failed,
        "error_rate": rate(failed, started),
        "errors": c.get("error_occurred", 0),
        "errors_by_type": dict(sorted(p.errors_by_type.items())),
        "retries": {
            "attempted": c.get("retry_attempted", 0),
            "succeeded": c.get("retry_succeeded", 0),
            "failed": c.get("retry_failed", 0),
        },
        "fallbacks": c.get("fallback_triggered", 0),
        "circuit_breakers": live["breakers"],
        "circuit_breaker_events": {
            "opened": c.get("circuit_breaker_opened", 0),
            "half_opened": c.get("circuit_breaker_half_opened", 0),
            "closed": c.get("circuit_breaker_closed", 0),
        },
        "active_requests": live["in_flight"],
        "recent_errors": live["errors"][:recent],
        "dead_letters": sum(p.dlq.values()),
        "dead_letters_by_reason": dict(sorted(p.dlq.items())),
        "duplicates": p.duplicates,
    }


def summary(p: Partial) -> dict[str, Any]:
    c = p.count
    finished = sum(c.get(k, 0) for k in ("generation_completed", "generation_failed"))
    finished += c.get("generation_canceled", 0)
    duration = p.sketch.get("generation_duration_ms")
    money = costs(p, top_users=0)
    return {
        "total_generations": c.get("generation_started", 0),
        "completed_generations": c.get("generation_completed", 0),
        "success_rate": rate(c.get("generation_completed", 0), finished),
        "average_duration_ms": duration["sum"] / duration["count"]
        if duration and duration["count"]
        else None,
        "total_cost_nanousd": money["total_cost_nanousd"],
        "total_cost_usd": money["total_cost_usd"],
        "cost_per_user_nanousd": money["cost_per_user_nanousd"],
        "cost_per_user_usd": money["cost_per_user_usd"],
        "events": sum(c.values()),
    }


def timeseries_value(metric: str, p: Partial, seconds: float) -> float | int | None:
    """One point of a per-step series; `TIMESERIES_METRICS` lists the names."""
    c = p.count
    if metric == "events":
        return sum(c.values())
    if metric == "generations":
        return c.get("generation_started", 0)
    if metric == "requests_per_second":
        return c.get("generation_started", 0) / seconds
    if metric == "error_rate":
        return rate(c.get("generation_failed", 0), c.get("generation_started", 0))
    if metric == "cache_hit_rate":
        hits = c.get("cache_hit", 0)
        return rate(hits, hits + c.get("cache_miss", 0))
    if metric == "cost_nanousd":
        return int(sum(r["cost_nanousd"] for r in p.models.values()))
    if metric == "average_quality_score":
        return rate(p.quality["score_sum"], p.quality["score_count"])
    if metric == "acceptance_rate":
        return rate(p.quality["approved_without_edit"], c.get("generation_completed", 0))
    if metric == "edit_rate":
        return rate(c.get("uvp_edited", 0), c.get("generation_completed", 0))
    if metric == "dead_letters":
        return sum(p.dlq.values())
    for prefix, q in (("p50_", 0.5), ("p95_", 0.95), ("p99_", 0.99)):
        if metric.startswith(prefix):
            series = metric[len(prefix) :]
            series = "generation_duration_ms" if series == "duration_ms" else series
            sketch = p.sketch.get(series)
            return sketches.quantile(sketch, q) if sketch else None
    raise ValueError(f"unknown time-series metric {metric!r}; one of {TIMESERIES_METRICS}")


TIMESERIES_METRICS: tuple[str, ...] = (
    "events",
    "generations",
    "requests_per_second",
    "error_rate",
    "cache_hit_rate",
    "cost_nanousd",
    "average_quality_score",
    "acceptance_rate",
    "edit_rate",
    "dead_letters",
    "p50_duration_ms",
    "p95_duration_ms",
    "p99_duration_ms",
    "p95_time_to_first_byte_ms",
    "p95_<any series name>",
)

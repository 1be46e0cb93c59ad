"""What the API shows, derived from merged partials and live states (pure functions).

Every figure is defined in docs/metrics.md; rates are 0..1 and None when the denominator is
zero; money is `*_nanousd` (exact int) plus `*_usd` (decimal string); durations are ms.
"""

from __future__ import annotations

from typing import Any

from producers.contract import PHASES
from streams import sketches
from streams.money import ratio_usd, usd
from streams.partial import OUTCOMES, Partial, Targets
from streams.slices import CALLS, COST, FIGURES, INPUT, KIND_FIGURE, OUTPUT, Merged

QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
TIERS: tuple[str, ...] = ("haiku", "sonnet", "opus")
EDIT_KINDS: tuple[str, ...] = ("uvp_edited", "transformation_edited", "benefit_reordered")
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
    in_flight = streams = 0
    queue: dict[str, list[int]] = {}
    breakers: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    for live in lives:
        in_flight += int(live.get("in_flight", 0))
        streams += int(live.get("streams_in_flight", 0))
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
        "streams_in_flight": streams,
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
        "phases_started": {ph: p.tally.get(f"phase_started:{ph}", 0) for ph in PHASES},
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
    out["streams"] = {
        "started": c.get("stream_started", 0),
        "completed": c.get("stream_completed", 0),
        "in_flight": live.get("streams_in_flight", 0),
        "chunks": p.tally.get("stream_chunks", 0),
        "duration": duration_stats(p.sketch.get("stream_duration_ms")),
        "time_to_first_chunk": duration_stats(p.sketch.get("stream_time_to_first_chunk_ms"), "ms"),
    }
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


def costs(p: Partial, users: Merged | None = None, top_users: int = 100) -> dict[str, Any]:
    """CostMetrics of a partial; the per-user figures come from the bounded user table
    `users` (null without one: a slice the table does not cover)."""
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
    tiers = {t: dict.fromkeys(("calls", "input_tokens", "output_tokens", "cost_nanousd"), 0)
             for t in TIERS}  # fmt: skip
    for row in p.models.values():
        tier = tiers.get(row["tier"] or "")
        if tier is not None:
            for k in tier:
                tier[k] += row[k]
    per_tier: dict[str, Any] = {}
    for name, t in tiers.items():
        per_tier[f"{name}_calls"] = t["calls"]
        per_tier[f"{name}_tokens"] = {"input": t["input_tokens"], "output": t["output_tokens"]}
        per_tier[f"{name}_cost_nanousd"] = t["cost_nanousd"]
        per_tier[f"{name}_cost_usd"] = usd(t["cost_nanousd"])
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
        **per_tier,
        "by_model": models,
        **user_costs(users, top_users),
    }


def user_costs(users: Merged | None, top_users: int) -> dict[str, Any]:
    """The per-user part of CostMetrics. `user_count` counts the users with a model call the
    tables name: exact when no user fell out of the top-K in the range (`users_complete`),
    else a lower bound (users only ever in `other` are not counted); money and tokens per
    user divide every call that has a user by that count. `by_user` lists exact users."""
    if users is None:
        return dict.fromkeys(USER_COST_FIELDS)
    callers = {u: r for u, r in users.values.items() if r[CALLS]}
    count = max(users.callers, len(callers))
    total = users.total()
    per_user_usd, per_user_nanos = ratio_usd(total[COST], count)
    ranked = sorted(callers.items(), key=lambda kv: (-kv[1][COST], kv[0]))
    return {
        "user_count": count,
        "users_complete": users.complete,
        "by_user": [
            {
                "user_id": u,
                "calls": r[CALLS],
                "tokens": r[INPUT] + r[OUTPUT],
                "cost_nanousd": r[COST],
                "cost_usd": usd(r[COST]),
            }
            for u, r in ranked[:top_users]
        ],
        "cost_per_user_nanousd": per_user_nanos,
        "cost_per_user_usd": per_user_usd,
        "average_tokens_per_user": rate(total[INPUT] + total[OUTPUT], count),
    }


USER_COST_FIELDS: tuple[str, ...] = (
    "user_count",
    "users_complete",
    "by_user",
    "cost_per_user_nanousd",
    "cost_per_user_usd",
    "average_tokens_per_user",
)


def generations(p: Partial) -> int:
    """The denominator of the outcome rates: generations completed, plus those canceled
    while running (each has at most one outcome, counted in its own bucket)."""
    return p.count.get("generation_completed", 0) + int(p.quality["canceled_running"])


def daily_budget(state: dict[str, Any] | None) -> dict[str, Any]:
    """CostMetrics' budget fields from the global scope's budget state (null without one)."""
    if state is None:
        return dict.fromkeys(BUDGET_FIELDS)
    budget, spend = int(state["budget_nanousd"]), int(state["spend_nanousd"])
    return {
        "budget_period": state.get("period"),
        "daily_budget_nanousd": budget,
        "daily_budget_usd": usd(budget),
        "daily_spend_nanousd": spend,
        "daily_spend_usd": usd(spend),
        "budget_remaining_nanousd": budget - spend,
        "budget_remaining_usd": usd(budget - spend),
        "percent_used": state.get("percent_used"),
    }


BUDGET_FIELDS: tuple[str, ...] = (
    "budget_period",
    "daily_budget_nanousd",
    "daily_budget_usd",
    "daily_spend_nanousd",
    "daily_spend_usd",
    "budget_remaining_nanousd",
    "budget_remaining_usd",
    "percent_used",
)


def quality(p: Partial) -> dict[str, Any]:
    q, c = p.quality, p.count
    completed = c.get("generation_completed", 0)
    total = generations(p)
    nps_n = q["nps_count"]
    approval = p.sketch.get("time_to_approval_ms")
    first_edit = p.sketch.get("time_to_first_edit_ms")
    outcomes = {k: int(q[k]) for k in OUTCOMES}
    edits_by_kind = {k: c.get(k, 0) for k in EDIT_KINDS}
    selected, deselected = c.get("profile_selected", 0), c.get("profile_deselected", 0)
    return {
        "scored_count": int(q["score_count"]),
        "average_score": rate(q["score_sum"], q["score_count"]),
        "distribution": {k: int(q[k]) for k in ("excellent", "good", "fair", "poor")},
        "generations_completed": completed,
        "generations": total,
        "approvals": c.get("uvp_approved", 0),
        "rejections": int(q["rejections"]),
        "approved_without_edit": outcomes["approved_without_edit"],
        "approved_after_edit": outcomes["approved_after_edit"],
        "regenerated_generations": outcomes["regenerated_generations"],
        "canceled_generations": outcomes["canceled_generations"],
        "open_generations": max(0, total - sum(outcomes.values())),
        "edited_generations": int(q["edited_generations"]),
        "upgraded_generations": int(q["upgraded_generations"]),
        "edits": sum(edits_by_kind.values()),
        "edits_by_kind": edits_by_kind,
        "regenerations": c.get("uvp_regenerated", 0),
        "abandonments": c.get("generation_canceled", 0),
        "canceled": c.get("generation_canceled", 0),
        "upgrades": c.get("model_upgraded", 0),
        "upgrades_by_path": [
            {"from_tier": path.split(">")[0], "to_tier": path.split(">")[1], "count": n}
            for path, n in sorted(p.upgrades.items())
        ],
        "acceptance_rate": rate(outcomes["approved_without_edit"], total),
        "edit_rate": rate(outcomes["approved_after_edit"], total),
        "regeneration_rate": rate(outcomes["regenerated_generations"], total),
        "abandonment_rate": rate(outcomes["canceled_generations"], total),
        "upgrade_rate": rate(q["upgraded_generations"], total),
        "profile_selections": selected,
        "profile_deselections": deselected,
        "net_profile_selections": selected - deselected,
        "net_profile_selections_per_generation": rate(
            selected - deselected, c.get("generation_started", 0)
        ),
        "average_confidence": rate(q["confidence_sum"], q["confidence_count"]),
        "low_confidence_count": int(q["low_confidence"]),
        "median_time_to_approval_ms": sketches.quantile(approval, 0.5) if approval else None,
        "p95_time_to_approval_ms": sketches.quantile(approval, 0.95) if approval else None,
        "p99_time_to_approval_ms": sketches.quantile(approval, 0.99) if approval else None,
        "time_to_approval": duration_stats(approval, "ms"),
        "median_time_to_first_edit_ms": sketches.quantile(first_edit, 0.5) if first_edit else None,
        "satisfaction_count": int(q["satisfaction_count"]),
        "average_satisfaction": rate(q["satisfaction_sum"], q["satisfaction_count"]),
        "satisfaction_distribution": {str(r): int(q[f"satisfaction_{r}"]) for r in range(1, 6)},
        "nps_count": int(nps_n),
        "nps": None if not nps_n else 100.0 * (q["promoters"] - q["detractors"]) / nps_n,
        "nps_promoters": int(q["promoters"]),
        "nps_passives": int(q["passives"]),
        "nps_detractors": int(q["detractors"]),
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
            "failed_attempts": p.tally.get("retry_failed_attempts", 0),
        },
        "fallbacks": c.get("fallback_triggered", 0),
        "generations_canceled": c.get("generation_canceled", 0),
        "phase_failures": c.get("phase_failed", 0),
        "phase_failures_by_phase": {ph: p.tally.get(f"phase_failed:{ph}", 0) for ph in PHASES},
        "circuit_breakers": live["breakers"],
        "circuit_breaker_events": {
            "opened": c.get("circuit_breaker_opened", 0),
            "half_opened": c.get("circuit_breaker_half_opened", 0),
            "closed": c.get("circuit_breaker_closed", 0),
        },
        "active_requests": live["in_flight"],
        "streams_in_flight": live.get("streams_in_flight", 0),
        "recent_errors": live["errors"][:recent],
        "dead_letters": sum(p.dlq.values()),
        "dead_letters_by_reason": dict(sorted(p.dlq.items())),
        "duplicates": p.duplicates,
    }


def summary(p: Partial, users: Merged | None = None) -> dict[str, Any]:
    c = p.count
    finished = sum(c.get(k, 0) for k in ("generation_completed", "generation_failed"))
    finished += c.get("generation_canceled", 0)
    duration = p.sketch.get("generation_duration_ms")
    money = costs(p, users, top_users=0)
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
        return rate(p.quality["approved_without_edit"], generations(p))
    if metric == "edit_rate":
        return rate(p.quality["approved_after_edit"], generations(p))
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


# -- slices of a high-cardinality dimension (user, tag): compact figures only -------------

COMPACT_FIGURES: dict[str, frozenset[str]] = {
    "performance": frozenset({"generations_started", "requests_per_second"}),
    "costs": frozenset(
        {
            "total_calls",
            "total_input_tokens",
            "total_output_tokens",
            "total_tokens",
            "total_cost_nanousd",
            "total_cost_usd",
            "unpriced_calls",
            "generations",  # daily costs
            *USER_COST_FIELDS,
        }
    ),
    "quality": frozenset({"generations_completed", "abandonments", "canceled"}),
    "health": frozenset(
        {
            "generations_started",
            "generations_failed",
            "error_rate",
            "errors",
            "generations_canceled",
        }
    ),
    "summary": frozenset(
        {
            "total_generations",
            "completed_generations",
            "success_rate",
            "total_cost_nanousd",
            "total_cost_usd",
            "cost_per_user_nanousd",
            "cost_per_user_usd",
            "events",
        }
    ),
}
"""What a user= or tag= slice can say per view (docs/slicing.md); every other field is null."""
COMPACT_SERIES: frozenset[str] = frozenset(
    {"events", "generations", "requests_per_second", "error_rate", "cost_nanousd"}
)


def compact_partial(row: list[int]) -> Partial:
    """A partial carrying just a table row's figures, so the views compute them as usual."""
    figures = dict(zip(FIGURES, row, strict=True))
    p = Partial()
    for kind, index in KIND_FIGURE.items():
        if row[index]:
            p.count[kind] = row[index]
    if row[CALLS]:
        p.count["model_called"] = row[CALLS]
    rest = figures["events"] - sum(p.count.values())
    if rest:
        p.count["other_kinds"] = rest
    if row[CALLS]:
        p.models[""] = {
            "tier": None,
            "calls": row[CALLS],
            "input_tokens": row[INPUT],
            "output_tokens": row[OUTPUT],
            "cache_write_tokens": 0,
            "cache_read_tokens": 0,
            "cost_nanousd": row[COST],
            "unpriced_calls": figures["unpriced_calls"],
            "cache_write_1h_tokens": 0,
        }
    return p


def compact(view: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Null every figure a compact slice does not know (keeps start_ms/end_ms)."""
    known = COMPACT_FIGURES[view]
    return {k: (v if k in known else None) for k, v in figures.items()}

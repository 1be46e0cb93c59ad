"""Snapshot numbers as Prometheus metric families.

Names carry their unit (`_seconds`, `_usd`, `_ratio`) as prometheus_client advises.
Latencies are summaries (`{quantile="0.5|0.95|0.99"}` plus `_count` and `_sum`) over the
last 5 minutes; `_5m` gauges count what happened in those 5 minutes; `_today` gauges cover
the current UTC day. A figure the worker reports as null (no data) is left out. Sink
figures are the `genpulse sinks` process's own totals since it started (counters that reset
when it restarts), from its health hash.

Label cardinality is bounded by construction (the rule of docs/api.md): a label takes values
from a fixed vocabulary (phase, mark, outcome, kind, quantile), from configuration (budget
scopes, sinks), or from event data with at most MAX_LABEL_VALUES values per family, the
largest kept and the rest summed into one `other` series. User ids and tag values are
never labels; per-service and per-environment series are the worker's grouped answers
folded the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.sinks_health import OUTCOMES
from streams.slicing import OTHER_VALUE

MAX_LABEL_VALUES = 20
"""Most values a data-derived label takes in one family; the rest fold into `other`."""
SLICED_DIMENSIONS = ("service", "environment")
"""The dimensions /metrics breaks totals down by (never user or tag: unbounded)."""

QUANTILE_KEYS = (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))
TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")
MARKS = ("time_to_first_byte", "time_to_first_content", "time_to_interactive", "time_to_complete")


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value) / 1000


def _summary(name: str, text: str) -> Metric:
    return Metric(name, text, "summary")


def _add_summary(
    family: Metric, labels: dict[str, str], stats: dict[str, Any], suffix: str
) -> None:
    """Quantile samples, `_count`, `_sum` (prometheus_client's families lack quantiles)."""
    count = int(stats.get("count", 0))
    for q, key in QUANTILE_KEYS:
        seconds = _seconds(stats.get(f"{key}_{suffix}"))
        if seconds is not None:
            family.add_sample(family.name, {**labels, "quantile": q}, seconds)
    family.add_sample(f"{family.name}_count", labels, float(count))
    family.add_sample(
        f"{family.name}_sum", labels, (_seconds(stats.get(f"average_{suffix}")) or 0.0) * count
    )


Row = dict[str, Any]


def bounded(
    rows: list[Row], label: str, rank: Callable[[Row], float], sums: list[str]
) -> list[Row]:
    """At most MAX_LABEL_VALUES rows: the highest by `rank`, and one whose `label` is `other`
    holding the sum of each of `sums` over the rest (and over a row already named `other`)."""
    named = sorted((r for r in rows if r.get(label) != OTHER_VALUE), key=rank, reverse=True)
    rest = [r for r in rows if r.get(label) == OTHER_VALUE]
    if len(named) + bool(rest) > MAX_LABEL_VALUES:
        rest += named[MAX_LABEL_VALUES - 1 :]
        named = named[: MAX_LABEL_VALUES - 1]
    if rest:
        named.append({label: OTHER_VALUE, **{f: sum(_number(r, f) for r in rest) for f in sums}})
    return named


def _number(row: Row, path: str) -> float:
    value: Any = row
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return float(value or 0)


def _gauge(name: str, text: str, value: Any, labels: dict[str, str] | None = None) -> Metric:
    family = GaugeMetricFamily(name, text, labels=list(labels or {}))
    if value is not None:
        family.add_metric(list((labels or {}).values()), float(value))
    return family


class SnapshotCollector(Collector):
    def __init__(
        self,
        performance: dict[str, Any],
        health: dict[str, Any],
        quality: dict[str, Any],
        costs: dict[str, Any],
        budgets: list[dict[str, Any]],
        sinks: dict[str, dict[str, Any]] | None = None,
        recent_by: dict[str, dict[str, Any]] | None = None,
        today_by: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.performance = performance
        self.health = health
        self.quality = quality
        self.costs = costs
        self.budgets = budgets
        self.sinks = sinks or {}  # the `sinks` of api.sinks_health.read_sinks_health
        # dimension -> the grouped summary (group_by=<dimension>) of the last 5 minutes / today
        self.recent_by = recent_by or {}
        self.today_by = today_by or {}

    def collect(self) -> Iterator[Metric]:
        yield from self._performance()
        yield from self._health()
        yield from self._quality()
        yield from self._costs()
        yield from self._budgets()
        yield from self._sinks()
        yield from self._slices()

    def _performance(self) -> Iterator[Metric]:
        perf = self.performance
        phases = _summary(
            "genpulse_phase_duration_seconds", "Duration of each generation phase, last 5 minutes."
        )
        for phase, stats in perf.get("phases", {}).items():
            _add_summary(phases, {"phase": phase}, stats, "duration_ms")
        yield phases
        total = _summary(
            "genpulse_generation_duration_seconds", "Whole generation duration, last 5 minutes."
        )
        _add_summary(total, {}, perf.get("total", {}), "duration_ms")
        yield total
        for mark in MARKS:
            family = _summary(
                f"genpulse_{mark}_seconds", f"{mark.replace('_', ' ')}, last 5 minutes."
            )
            _add_summary(family, {}, perf.get(mark, {}), "ms")
            yield family
        within = GaugeMetricFamily(
            "genpulse_within_target_ratio",
            "Share of time-to-X measurements at or under their target, last 5 minutes.",
            labels=["mark"],
        )
        for mark in MARKS:
            value = perf.get(mark, {}).get("within_target_rate")
            if value is not None:
                within.add_metric([mark], float(value))
        yield within
        yield _gauge(
            "genpulse_cache_hit_ratio", "Cache hits / lookups.", perf.get("cache_hit_rate")
        )
        yield _gauge(
            "genpulse_requests_per_second",
            "Generations started per second.",
            perf.get("requests_per_second"),
        )
        yield _gauge(
            "genpulse_concurrent_requests",
            "Generations in flight now.",
            perf.get("concurrent_requests"),
        )
        yield _gauge("genpulse_queue_depth", "Queue depth, all services.", perf.get("queue_depth"))
        streams = perf.get("streams") or {}
        family = _summary("genpulse_stream_duration_seconds", "stream_started to stream_completed.")
        _add_summary(family, {}, streams.get("duration", {}), "duration_ms")
        yield family
        family = _summary("genpulse_stream_time_to_first_chunk_seconds", "Time to first chunk.")
        _add_summary(family, {}, streams.get("time_to_first_chunk", {}), "ms")
        yield family
        yield _gauge("genpulse_streams_in_flight", "Streams open now.", streams.get("in_flight"))
        yield _gauge("genpulse_streams_started_5m", "Streams started.", streams.get("started"))
        yield _gauge(
            "genpulse_streams_completed_5m", "Streams completed.", streams.get("completed")
        )

    def _health(self) -> Iterator[Metric]:
        health = self.health
        yield _gauge(
            "genpulse_error_ratio", "Failed / started generations.", health.get("error_rate")
        )
        yield _gauge(
            "genpulse_generations_started_5m",
            "Generations started.",
            health.get("generations_started"),
        )
        yield _gauge(
            "genpulse_generations_failed_5m",
            "Generations failed.",
            health.get("generations_failed"),
        )
        errors = GaugeMetricFamily("genpulse_errors_5m", "Errors, by type.", labels=["type"])
        by_type = [{"type": k, "n": n} for k, n in health.get("errors_by_type", {}).items()]
        for row in bounded(by_type, "type", lambda r: r["n"], ["n"]):
            errors.add_metric([row["type"]], float(row["n"]))
        yield errors
        retries = GaugeMetricFamily(
            "genpulse_retries_5m", "Retries, by outcome.", labels=["outcome"]
        )
        for outcome, count in health.get("retries", {}).items():
            retries.add_metric([outcome], float(count))
        yield retries
        yield _gauge("genpulse_fallbacks_5m", "Fallbacks triggered.", health.get("fallbacks"))
        yield _gauge(
            "genpulse_generations_canceled_5m",
            "generation_canceled events.",
            health.get("generations_canceled"),
        )
        phase_failures = GaugeMetricFamily(
            "genpulse_phase_failures_5m", "Phase failures, by phase.", labels=["phase"]
        )
        for phase, count in health.get("phase_failures_by_phase", {}).items():
            phase_failures.add_metric([phase], float(count))
        yield phase_failures
        breakers = GaugeMetricFamily(
            "genpulse_circuit_breaker_open", "1 while a breaker is open.", labels=["name"]
        )
        for breaker in bounded(  # open breakers first; `other`: how many more are open
            [
                {"name": str(b.get("name")), "open": 1.0 if b.get("state") == "open" else 0.0}
                for b in health.get("circuit_breakers", [])
            ],
            "name",
            lambda b: b["open"],
            ["open"],
        ):
            breakers.add_metric([breaker["name"]], breaker["open"])
        yield breakers
        dead = GaugeMetricFamily(
            "genpulse_dead_letters_5m", "Records dead-lettered, by reason.", labels=["reason"]
        )
        for reason, count in health.get("dead_letters_by_reason", {}).items():
            dead.add_metric([reason], float(count))
        yield dead
        yield _gauge(
            "genpulse_duplicates_5m",
            "Repeated event ids dropped by the worker (resends counted once).",
            health.get("duplicates"),
        )

    def _quality(self) -> Iterator[Metric]:
        q = self.quality
        yield _gauge(
            "genpulse_quality_score_average",
            "Average quality score (0-100).",
            q.get("average_score"),
        )
        for name in ("acceptance", "edit", "regeneration", "abandonment", "upgrade"):
            yield _gauge(
                f"genpulse_{name}_ratio", f"{name.capitalize()} rate.", q.get(f"{name}_rate")
            )
        yield _gauge(
            "genpulse_satisfaction_average",
            "Average satisfaction (1-5).",
            q.get("average_satisfaction"),
        )
        yield _gauge("genpulse_nps", "Net promoter score (-100..100).", q.get("nps"))
        nps = GaugeMetricFamily(
            "genpulse_nps_ratings_5m", "NPS ratings, by group.", labels=["group"]
        )
        for group in ("promoters", "passives", "detractors"):
            value = q.get(f"nps_{group}")
            if value is not None:
                nps.add_metric([group], float(value))
        yield nps
        ratings = GaugeMetricFamily(
            "genpulse_satisfaction_ratings_5m",
            "Satisfaction ratings, by rating.",
            labels=["rating"],
        )
        for rating, count in q.get("satisfaction_distribution", {}).items():
            ratings.add_metric([rating], float(count))
        yield ratings
        outcomes = GaugeMetricFamily(
            "genpulse_generation_outcomes_5m",
            "Generations by outcome (by their completion time).",
            labels=["outcome"],
        )
        for outcome in ("approved_without_edit", "approved_after_edit", "regenerated_generations",
                        "canceled_generations", "open_generations"):  # fmt: skip
            value = q.get(outcome)
            if value is not None:
                outcomes.add_metric([outcome.removesuffix("_generations")], float(value))
        yield outcomes
        edits = GaugeMetricFamily("genpulse_edits_5m", "Edits, by edit kind.", labels=["kind"])
        for kind, count in q.get("edits_by_kind", {}).items():
            edits.add_metric([kind], float(count))
        yield edits
        upgrades = GaugeMetricFamily(
            "genpulse_model_upgrades_5m", "Model upgrades, by tier path.", labels=["from", "to"]
        )
        paths = [
            {"path": (p["from_tier"], p["to_tier"]), "count": p["count"]}
            for p in q.get("upgrades_by_path", [])
        ]
        for path in bounded(paths, "path", lambda p: p["count"], ["count"]):
            pair = path["path"] if path["path"] != OTHER_VALUE else (OTHER_VALUE, OTHER_VALUE)
            upgrades.add_metric(list(pair), float(path["count"]))
        yield upgrades
        profiles = GaugeMetricFamily(
            "genpulse_profile_selections_5m", "Profile selections, by action.", labels=["action"]
        )
        profiles.add_metric(["selected"], float(q.get("profile_selections", 0)))
        profiles.add_metric(["deselected"], float(q.get("profile_deselections", 0)))
        yield profiles
        approval = GaugeMetricFamily(
            "genpulse_time_to_approval_seconds",
            "Time from completion to approval, by quantile.",
            labels=["quantile"],
        )
        for quantile, key in (("0.5", "median"), ("0.95", "p95"), ("0.99", "p99")):
            seconds = _seconds(q.get(f"{key}_time_to_approval_ms"))
            if seconds is not None:
                approval.add_metric([quantile], seconds)
        yield approval

    def _costs(self) -> Iterator[Metric]:
        c = self.costs
        cost = GaugeMetricFamily(
            "genpulse_model_cost_today_usd", "Model cost today, by model.", labels=["model", "tier"]
        )
        calls = GaugeMetricFamily(
            "genpulse_model_calls_today", "Model calls today.", labels=["model", "tier"]
        )
        tokens = GaugeMetricFamily(
            "genpulse_model_tokens_today",
            "Tokens today, by model and kind.",
            labels=["model", "kind"],
        )
        token_fields = [f"{kind}_tokens" for kind in TOKEN_KINDS]
        rows = bounded(
            c.get("by_model", []),
            "model",
            lambda r: _number(r, "cost_nanousd"),
            ["cost_usd", "calls", *token_fields],
        )
        for row in rows:
            labels = [str(row.get("model")), str(row.get("tier") or "")]
            cost.add_metric(labels, float(row.get("cost_usd", 0)))
            calls.add_metric(labels, float(row.get("calls", 0)))
            for kind in TOKEN_KINDS:
                tokens.add_metric([labels[0], kind], float(row.get(f"{kind}_tokens", 0)))
        yield from (cost, calls, tokens)
        tier_calls = GaugeMetricFamily(
            "genpulse_tier_calls_today", "Model calls today, by tier.", labels=["tier"]
        )
        tier_cost = GaugeMetricFamily(
            "genpulse_tier_cost_today_usd", "Model cost today, by tier.", labels=["tier"]
        )
        tier_tokens = GaugeMetricFamily(
            "genpulse_tier_tokens_today", "Tokens today, by tier and kind.", labels=["tier", "kind"]
        )
        for tier in ("haiku", "sonnet", "opus"):
            tier_calls.add_metric([tier], float(c.get(f"{tier}_calls", 0)))
            tier_cost.add_metric([tier], float(c.get(f"{tier}_cost_usd", 0)))
            for kind, value in (c.get(f"{tier}_tokens") or {}).items():
                tier_tokens.add_metric([tier, kind], float(value))
        yield from (tier_calls, tier_cost, tier_tokens)
        yield _gauge("genpulse_cost_today_usd", "Total model cost today.", c.get("total_cost_usd"))
        yield _gauge(
            "genpulse_cost_per_user_today_usd", "Cost per user today.", c.get("cost_per_user_usd")
        )
        yield _gauge(
            "genpulse_unpriced_calls_today",
            "Calls of unknown models today.",
            c.get("unpriced_calls"),
        )

    def _budgets(self) -> Iterator[Metric]:
        spend = GaugeMetricFamily(
            "genpulse_budget_spend_usd", "Spend of the current period, by scope.", labels=["scope"]
        )
        limit = GaugeMetricFamily(
            "genpulse_budget_limit_usd", "Daily budget, by scope.", labels=["scope"]
        )
        used = GaugeMetricFamily(
            "genpulse_budget_used_ratio",
            "Spend over budget (1 = 100 %), by scope.",
            labels=["scope"],
        )
        for budget in self.budgets:
            scope = str(budget.get("scope", ""))
            spend.add_metric([scope], float(budget.get("spend_usd", 0)))
            limit.add_metric([scope], float(budget.get("budget_usd", 0)))
            used.add_metric([scope], float(budget.get("percent_used", 0)) / 100)
        yield from (spend, limit, used)

    def _sinks(self) -> Iterator[Metric]:
        """Families are listed even without a sinks process, so dashboards find them."""
        items = CounterMetricFamily(
            "genpulse_sink_items",
            "Items a sink was given, by where they ended (sent, failed, dropped, invalid, "
            "duplicate), since the sinks process started.",
            labels=["sink", "outcome"],
        )
        retries = CounterMetricFamily(
            "genpulse_sink_retries",
            "Batch retries, since the sinks process started.",
            labels=["sink"],
        )
        reasons = CounterMetricFamily(
            "genpulse_sink_reasons",
            "Refusals and repairs by reason (e.g. a GA4 name rule), since the process started.",
            labels=["sink", "reason"],
        )
        queued = GaugeMetricFamily(
            "genpulse_sink_queued", "Items waiting in the outbox or being tried.", labels=["sink"]
        )
        stale = GaugeMetricFamily(
            "genpulse_sink_stale",
            "1 when the sink's health entry is older than 3 health intervals.",
            labels=["sink"],
        )
        last_sent = GaugeMetricFamily(
            "genpulse_sink_last_sent_timestamp_seconds",
            "When the sink last delivered something (left out before its first delivery).",
            labels=["sink"],
        )
        for sink, entry in self.sinks.items():
            for outcome in OUTCOMES:
                items.add_metric([sink, outcome], float(entry.get(outcome, 0)))
            retries.add_metric([sink], float(entry.get("retries", 0)))
            for reason, count in sorted(entry.get("reasons", {}).items()):
                reasons.add_metric([sink, reason], float(count))
            queued.add_metric([sink], float(entry.get("queued", 0)))
            stale.add_metric([sink], 1.0 if entry.get("stale") else 0.0)
            if entry.get("last_sent_ms"):
                last_sent.add_metric([sink], float(entry["last_sent_ms"]) / 1000)
        yield from (items, retries, reasons, queued, stale, last_sent)

    def _slices(self) -> Iterator[Metric]:
        """Per-service and per-environment totals, at most MAX_LABEL_VALUES values each."""
        for dim in SLICED_DIMENSIONS:
            started = GaugeMetricFamily(
                f"genpulse_{dim}_generations_5m", f"Generations started, by {dim}.", labels=[dim]
            )
            completed = GaugeMetricFamily(
                f"genpulse_{dim}_completed_generations_5m",
                f"Generations completed, by {dim}.",
                labels=[dim],
            )
            for row in _group_rows(self.recent_by.get(dim), dim, "total_generations",
                                   ["total_generations", "completed_generations"]):  # fmt: skip
                started.add_metric([row[dim]], row["total_generations"])
                completed.add_metric([row[dim]], row["completed_generations"])
            cost = GaugeMetricFamily(
                f"genpulse_{dim}_cost_today_usd", f"Model cost today, by {dim}.", labels=[dim]
            )
            for row in _group_rows(self.today_by.get(dim), dim, "total_cost_nanousd",
                                   ["total_cost_nanousd"]):  # fmt: skip
                cost.add_metric([row[dim]], row["total_cost_nanousd"] / 1e9)
            yield from (started, completed, cost)


def _group_rows(answer: dict[str, Any] | None, dim: str, rank: str, sums: list[str]) -> list[Row]:
    """A grouped answer's groups (and its `other`) as bounded rows labelled by `dim`."""
    if not answer:
        return []
    parts = [(g["value"], g) for g in answer.get("groups", [])]
    if answer.get("other") is not None:
        parts.append((OTHER_VALUE, answer["other"]))
    rows = [{dim: str(value), **{f: _number(data, f) for f in sums}} for value, data in parts]
    return bounded(rows, dim, lambda r: r[rank], sums)

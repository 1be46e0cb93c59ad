"""Snapshot numbers as Prometheus metric families.

Names carry their unit (`_seconds`, `_usd`, `_ratio`) as prometheus_client advises.
Latencies are summaries (`{quantile="0.5|0.95|0.99"}` plus `_count` and `_sum`) over the
last 5 minutes; `_5m` gauges count what happened in those 5 minutes; `_today` gauges cover
the current UTC day. A figure the worker reports as null (no data) is left out. Sink
figures are the `genpulse sinks` process's own totals since it started (counters that reset
when it restarts), from its health hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.sinks_health import OUTCOMES

QUANTILE_KEYS = (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))
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
    ) -> None:
        self.performance = performance
        self.health = health
        self.quality = quality
        self.costs = costs
        self.budgets = budgets
        self.sinks = sinks or {}  # the `sinks` of api.sinks_health.read_sinks_health

    def collect(self) -> Iterator[Metric]:
        yield from self._performance()
        yield from self._health()
        yield from self._quality()
        yield from self._costs()
        yield from self._budgets()
        yield from self._sinks()

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
        for kind, count in health.get("errors_by_type", {}).items():
            errors.add_metric([kind], float(count))
        yield errors
        retries = GaugeMetricFamily(
            "genpulse_retries_5m", "Retries, by outcome.", labels=["outcome"]
        )
        for outcome, count in health.get("retries", {}).items():
            retries.add_metric([outcome], float(count))
        yield retries
        yield _gauge("genpulse_fallbacks_5m", "Fallbacks triggered.", health.get("fallbacks"))
        breakers = GaugeMetricFamily(
            "genpulse_circuit_breaker_open", "1 while a breaker is open.", labels=["name"]
        )
        for breaker in health.get("circuit_breakers", []):
            breakers.add_metric(
                [str(breaker.get("name"))], 1.0 if breaker.get("state") == "open" else 0.0
            )
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
        for row in c.get("by_model", []):
            labels = [str(row.get("model")), str(row.get("tier") or "")]
            cost.add_metric(labels, float(row.get("cost_usd", 0)))
            calls.add_metric(labels, float(row.get("calls", 0)))
            for kind in ("input", "output", "cache_write", "cache_read"):
                tokens.add_metric([labels[0], kind], float(row.get(f"{kind}_tokens", 0)))
        yield from (cost, calls, tokens)
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

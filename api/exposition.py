"""Snapshot numbers as Prometheus metric families (names carry their unit, per the
prometheus_client conventions: `_seconds`, `_usd`, `_ratio`, `_total`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class SnapshotCollector(Collector):
    def __init__(
        self,
        performance: dict[str, Any],
        health: dict[str, Any],
        quality: dict[str, Any],
        costs: dict[str, Any],
        budgets: list[dict[str, Any]],
    ) -> None:
        self.performance = performance
        self.health = health
        self.quality = quality
        self.costs = costs
        self.budgets = budgets

    def collect(self) -> Iterator[Metric]:
        yield from self._budgets()

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

"""Response models: the seed's interfaces in snake_case with units in the names.

They mirror what streams.reader.MetricsReader returns (docs/snapshots.md, docs/metrics.md)
and only describe and check it; every number is computed by the worker.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Snapshot(BaseModel):
    """Base of the responses built from the worker's snapshots: extra fields pass through."""

    model_config = ConfigDict(extra="allow")


class Alert(Snapshot):
    id: str = Field(examples=["budget:global:2026-11-26:0.8"])
    rule: str = Field(examples=["budget"])
    status: Literal["fired", "resolved"]
    severity: str = Field(examples=["alert"])
    scope: str = Field(examples=["global"])
    value: float | None = None
    threshold: float | None = None
    window: str | None = Field(None, examples=["2026-11-26"])
    time_ms: int
    message: str = ""


class BudgetStatus(Snapshot):
    scope: str = Field(examples=["global"])
    period: str = Field(examples=["2026-11-26"])
    budget_nanousd: int
    spend_nanousd: int
    budget_usd: str = Field(examples=["100"])
    spend_usd: str = Field(examples=["51.2"])
    remaining_usd: str = Field(examples=["48.8"])
    percent_used: float = Field(examples=[51.2])
    state: Literal["ok", "warning", "alert", "critical", "stopped"]
    updated_ms: int


class PerformanceMetrics(Snapshot):
    pass


class CostMetrics(Snapshot):
    pass


class QualityMetrics(Snapshot):
    pass


class HealthMetrics(Snapshot):
    pass


class Summary(Snapshot):
    total_generations: int
    success_rate: float | None
    average_duration_ms: float | None
    cost_per_user_usd: str | float | None


class TimeseriesPoint(Snapshot):
    pass


class DailyCostSummary(Snapshot):
    pass


class RecentError(Snapshot):
    pass

"""The specification's interfaces as the SDK's get_* methods return them (snake_case, units
in the names). Money is exact: `*_nanousd` integers beside `*_usd` decimal strings; rates
are 0..1 and None when their denominator is zero; durations are milliseconds.

docs/specification.md maps every field to its place in the specification and in the API.
"""

from __future__ import annotations

from typing import Any, TypedDict


class PerformanceMetrics(TypedDict):
    """The specification's PerformanceMetrics, for this process since its client started."""

    phase1_duration_ms: float | None  # extraction, average
    phase2_duration_ms: float | None  # analysis
    phase3_duration_ms: float | None  # synthesis
    phase4_duration_ms: float | None  # enhancement
    total_duration_ms: float | None  # generation_duration_ms, average
    time_to_first_byte_ms: float | None  # averages of the time_to_* series
    time_to_first_content_ms: float | None
    time_to_interactive_ms: float | None
    time_to_complete_ms: float | None
    cache_hits: int
    cache_misses: int
    cache_hit_rate: float | None  # hits / (hits + misses)
    requests_per_second: float  # generation_started per second since the client started
    concurrent_requests: int  # started minus completed, failed and canceled
    queue_depth: int  # the last queue_depth_sampled
    p50_duration_ms: float | None  # of total_duration_ms (1 % relative error)
    p95_duration_ms: float | None
    p99_duration_ms: float | None


class DurationSummary(TypedDict):
    count: int
    avg_duration_ms: float | None
    p50_duration_ms: float | None
    p95_duration_ms: float | None
    p99_duration_ms: float | None
    min_duration_ms: float | None
    max_duration_ms: float | None


PhaseMetrics = dict[str, DurationSummary]
"""The specification's PhaseMetrics: one DurationSummary per phase that was measured."""


class PerformanceSummary(TypedDict):
    """The specification's PerformanceSummary (it names no fields): counts and the key views."""

    series: int
    values: int
    phases: PhaseMetrics
    generation: DurationSummary | None
    open_timers: int
    metrics: PerformanceMetrics


class Tokens(TypedDict):
    input: int
    output: int


class CostMetrics(TypedDict):
    """The specification's CostMetrics: this process's calls; the budget fields are the
    fleet's global budget as the worker last published it (None before it has)."""

    haiku_calls: int
    sonnet_calls: int
    opus_calls: int
    total_calls: int
    haiku_tokens: Tokens
    sonnet_tokens: Tokens
    opus_tokens: Tokens
    haiku_cost_nanousd: int
    sonnet_cost_nanousd: int
    opus_cost_nanousd: int
    haiku_cost_usd: str
    sonnet_cost_usd: str
    opus_cost_usd: str
    total_cost_usd: str
    total_cost_nanousd: int
    user_count: int
    cost_per_user_nanousd: int
    cost_per_user_usd: str
    average_tokens_per_user: float | None
    daily_budget_usd: str | None
    daily_spend_usd: str | None
    budget_remaining_usd: str | None
    percent_used: float | None
    # kept from earlier versions (docs/sdk.md)
    calls: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int  # 5-minute cache writes
    cache_write_1h_tokens: int
    cache_read_tokens: int
    unpriced_calls: int
    by_tier: dict[str, dict[str, Any]]
    by_model: dict[str, dict[str, Any]]
    by_user: dict[str, dict[str, Any]]


class DailyCostSummary(TypedDict):
    """The specification's DailyCostSummary: this process's calls of today (cost_timezone)."""

    date: str
    total_calls: int
    total_tokens: int
    total_cost_nanousd: int
    total_cost_usd: str
    unpriced_calls: int
    by_tier: dict[str, dict[str, Any]]
    user_count: int
    cost_per_user_usd: str


class BudgetStatusView(TypedDict, total=False):
    """The specification's BudgetStatus for one scope (empty before the worker published it)."""

    scope: str
    period: str
    state: str
    budget_usd: str
    spend_usd: str
    remaining_usd: str
    percent_used: float
    budget_nanousd: int
    spend_nanousd: int
    updated_ms: int


class ScoreDistribution(TypedDict):
    excellent: int  # 90-100
    good: int  # 70-89
    fair: int  # 50-69
    poor: int  # < 50


class QualityMetrics(TypedDict):
    """The specification's QualityMetrics, from the events this process tracked.

    Rates are shares of the generations this process completed (generation_completed),
    capped at 1: a process that approves generations another one completed has no
    meaningful local rate; the fleet's per-generation rates come from the metrics API.
    """

    average_quality_score: float | None
    score_distribution: ScoreDistribution
    acceptance_rate: float | None  # approved without edits / completed
    edit_rate: float | None  # approved after edits / completed
    regeneration_rate: float | None  # uvp_regenerated / completed
    abandonment_rate: float | None  # generation_canceled / completed
    average_confidence: float | None
    low_confidence_count: int  # confidence < 0.7
    upgrade_rate: float | None  # model_upgraded / completed
    time_to_approval_ms: float | None  # median, completion -> approval, same session
    time_to_first_edit_ms: float | None  # median, completion -> first edit
    user_satisfaction: float | None  # average 1..5 rating
    nps: float | None  # -100..100: % promoters minus % detractors
    generations_completed: int
    approved_without_edit: int
    approved_after_edit: int
    rejections: int
    regenerations: int
    abandonments: int
    upgrades: int
    satisfaction_distribution: dict[str, int]  # "1".."5"
    nps_promoters: int
    nps_passives: int
    nps_detractors: int


class EventView(TypedDict):
    """The specification's Event (timestamp in epoch ms)."""

    type: str
    timestamp: int
    session_id: str
    user_id: str | None
    data: dict[str, Any]

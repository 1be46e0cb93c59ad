"""Response models: the seed's interfaces in snake_case with units in the names.

They mirror what streams.reader.MetricsReader returns (docs/snapshots.md, docs/metrics.md)
and only describe and check it: every number is computed by the worker. Rates are 0..1 and
null when their denominator is zero; money is `*_nanousd` (exact integer) plus `*_usd` (a
decimal string); durations are milliseconds. Models allow extra fields, so a field the
worker adds reaches clients before these models name it.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

Rate = float | None
Ms = float | None


class Snapshot(BaseModel):
    model_config = ConfigDict(extra="allow")


class Ranged(Snapshot):
    start_ms: int = Field(description="Range start, epoch ms (inclusive, whole minutes).")
    end_ms: int = Field(description="Range end, epoch ms (exclusive).")


class DurationStats(Snapshot):
    count: int
    average_duration_ms: Ms
    p50_duration_ms: Ms
    p95_duration_ms: Ms
    p99_duration_ms: Ms
    max_duration_ms: Ms


class MsStats(Snapshot):
    count: int
    average_ms: Ms
    p50_ms: Ms
    p95_ms: Ms
    p99_ms: Ms
    max_ms: Ms


class MarkStats(Snapshot):
    """A time-to-X measurement and the share within its target."""

    count: int
    average_ms: Ms
    p50_ms: Ms
    p95_ms: Ms
    p99_ms: Ms
    max_ms: Ms
    target_ms: float
    within_target_count: int
    within_target_rate: Rate


class PhaseTimings(Snapshot):
    extraction: DurationStats
    analysis: DurationStats
    synthesis: DurationStats
    enhancement: DurationStats


class StreamMetrics(Snapshot):
    """stream_started -> stream_completed."""

    started: int
    completed: int
    in_flight: int = Field(description="Streams started and not completed, now.")
    chunks: int
    duration: DurationStats
    time_to_first_chunk: MsStats


class PerformanceMetrics(Ranged):
    """The seed's PerformanceMetrics."""

    phases: PhaseTimings
    phases_started: dict[str, int] = Field(
        default_factory=dict, description="phase_started events."
    )
    total: DurationStats = Field(description="Whole generation duration.")
    p50_duration_ms: Ms
    p95_duration_ms: Ms
    p99_duration_ms: Ms
    time_to_first_byte: MarkStats
    time_to_first_content: MarkStats
    time_to_interactive: MarkStats
    time_to_complete: MarkStats
    timers: dict[str, DurationStats] = Field(description="Named timers, by label.")
    model_calls: DurationStats
    cache_hits: int
    cache_misses: int
    cache_hit_rate: Rate
    generations_started: int
    requests_per_second: float
    concurrent_requests: int = Field(description="Generations in flight now.")
    queue_depth: int
    queue_depth_by_service: dict[str, int]
    streams: StreamMetrics | None = None


class TierTokens(Snapshot):
    input: int
    output: int


class ModelCost(Snapshot):
    model: str
    tier: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_nanousd: int
    cost_usd: str
    unpriced_calls: int


class UserCost(Snapshot):
    user_id: str
    calls: int
    tokens: int
    cost_nanousd: int
    cost_usd: str


class CostMetrics(Ranged):
    """The seed's CostMetrics."""

    total_calls: int
    total_input_tokens: int
    total_output_tokens: int
    total_cache_write_tokens: int
    total_cache_read_tokens: int
    total_tokens: int
    total_cost_nanousd: int
    total_cost_usd: str = Field(examples=["12.345"])
    unpriced_calls: int = Field(description="Calls of unknown models: counted, never $0.")
    by_model: list[ModelCost]
    user_count: int
    by_user: list[UserCost]
    cost_per_user_nanousd: int
    cost_per_user_usd: str
    average_tokens_per_user: float | None
    haiku_calls: int = 0
    sonnet_calls: int = 0
    opus_calls: int = 0
    haiku_tokens: TierTokens | None = None
    sonnet_tokens: TierTokens | None = None
    opus_tokens: TierTokens | None = None
    haiku_cost_nanousd: int = 0
    sonnet_cost_nanousd: int = 0
    opus_cost_nanousd: int = 0
    haiku_cost_usd: str = "0"
    sonnet_cost_usd: str = "0"
    opus_cost_usd: str = "0"
    budget_period: str | None = Field(None, description="The global budget's current day.")
    daily_budget_nanousd: int | None = Field(
        None, description="Global daily budget; null if unset."
    )
    daily_budget_usd: str | None = None
    daily_spend_nanousd: int | None = Field(None, description="Global spend in budget_period.")
    daily_spend_usd: str | None = None
    budget_remaining_nanousd: int | None = None
    budget_remaining_usd: str | None = None
    percent_used: float | None = Field(None, description="100 x spend / budget.")


class ScoreDistribution(Snapshot):
    excellent: int = Field(description="Scores 90-100.")
    good: int = Field(description="Scores 70-89.")
    fair: int = Field(description="Scores 50-69.")
    poor: int = Field(description="Scores under 50.")


class UpgradePath(Snapshot):
    from_tier: str
    to_tier: str
    count: int


class QualityMetrics(Ranged):
    """The seed's QualityMetrics."""

    scored_count: int
    average_score: float | None
    distribution: ScoreDistribution
    generations_completed: int
    approvals: int
    approved_without_edit: int
    edits: int
    regenerations: int
    abandonments: int
    upgrades: int
    acceptance_rate: Rate
    edit_rate: Rate
    regeneration_rate: Rate
    abandonment_rate: Rate
    upgrade_rate: Rate
    average_confidence: Rate
    low_confidence_count: int
    median_time_to_approval_ms: Ms
    median_time_to_first_edit_ms: Ms
    satisfaction_count: int
    average_satisfaction: float | None = Field(description="1-5.")
    nps_count: int
    nps: float | None = Field(description="-100..100: % promoters minus % detractors.")
    content_copied: int
    content_exported: int
    generations: int = Field(0, description="Outcome denominator: completed + canceled running.")
    rejections: int = 0
    approved_after_edit: int = 0
    regenerated_generations: int = 0
    canceled_generations: int = 0
    open_generations: int = 0
    edited_generations: int = 0
    upgraded_generations: int = 0
    edits_by_kind: dict[str, int] = Field(default_factory=dict)
    canceled: int = 0
    upgrades_by_path: list[UpgradePath] = Field(default_factory=list)
    profile_selections: int = 0
    profile_deselections: int = 0
    net_profile_selections: int = 0
    net_profile_selections_per_generation: float | None = None
    p95_time_to_approval_ms: Ms = None
    p99_time_to_approval_ms: Ms = None
    time_to_approval: MsStats | None = None
    satisfaction_distribution: dict[str, int] = Field(
        default_factory=dict, description="Ratings 1..5, count of each."
    )
    nps_promoters: int = 0
    nps_passives: int = 0
    nps_detractors: int = 0


class Retries(Snapshot):
    attempted: int
    succeeded: int
    failed: int
    failed_attempts: int = 0


class BreakerState(Snapshot):
    name: str
    state: str = Field(examples=["open"])
    since_ms: int


class BreakerEvents(Snapshot):
    opened: int
    half_opened: int
    closed: int


class RecentError(Snapshot):
    time_ms: int
    type: str
    message: str = ""
    session_id: str | None = None


class HealthMetrics(Ranged):
    generations_started: int
    generations_failed: int
    error_rate: Rate
    errors: int
    errors_by_type: dict[str, int]
    retries: Retries
    fallbacks: int
    circuit_breakers: list[BreakerState]
    circuit_breaker_events: BreakerEvents
    active_requests: int
    generations_canceled: int = 0
    phase_failures: int = 0
    phase_failures_by_phase: dict[str, int] = Field(default_factory=dict)
    streams_in_flight: int = 0
    recent_errors: list[RecentError]
    dead_letters: int
    dead_letters_by_reason: dict[str, int]
    duplicates: int = Field(
        0, description="Repeated event ids dropped (a resend of an event already counted)."
    )


class Summary(Ranged):
    """The overview cards."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "start_ms": 1764126460000,
                    "end_ms": 1764130060000,
                    "total_generations": 1520,
                    "completed_generations": 1441,
                    "success_rate": 0.962,
                    "average_duration_ms": 8421.5,
                    "total_cost_nanousd": 18250000000,
                    "total_cost_usd": "18.25",
                    "cost_per_user_nanousd": 152083333,
                    "cost_per_user_usd": "0.152083333",
                    "events": 40210,
                }
            ]
        },
    )

    total_generations: int
    completed_generations: int
    success_rate: Rate
    average_duration_ms: Ms
    total_cost_nanousd: int
    total_cost_usd: str
    cost_per_user_nanousd: int
    cost_per_user_usd: str
    events: int


class TimeseriesPoint(Snapshot):
    time_ms: int = Field(description="Step start, epoch ms.")
    value: float | None


class DailyCostSummary(Snapshot):
    """The seed's DailyCostSummary."""

    date: str = Field(examples=["2026-11-26"])
    total_cost_nanousd: int
    total_cost_usd: str
    total_calls: int
    total_tokens: int
    unpriced_calls: int
    by_model: list[ModelCost]
    user_count: int
    top_users: list[UserCost]
    cost_per_user_usd: str
    generations: int


class BudgetForecast(Snapshot):
    """Where the spend is heading at the rate of the last `window_minutes` (docs/metrics.md)."""

    window_minutes: int
    rate_nanousd_per_hour: int
    rate_usd_per_hour: str
    projected_spend_nanousd: int = Field(description="At the period's end (rolling: per window).")
    projected_spend_usd: str
    projected_full_ms: int | None = Field(
        None, description="When 100 % is reached, if before the end."
    )
    over_budget: bool = Field(description="The projection reaches the budget within the period.")
    alert: bool = Field(description="The forecast alert is firing.")


class BudgetStatus(Snapshot):
    """The seed's BudgetStatus: one scope's spend in the current period."""

    scope: str = Field(examples=["global"])
    period: str = Field(examples=["2026-11-26"])
    budget_nanousd: int
    spend_nanousd: int
    budget_usd: str = Field(examples=["100"], description="The budget per period.")
    spend_usd: str = Field(examples=["51.2"])
    remaining_usd: str = Field(examples=["48.8"])
    percent_used: float = Field(examples=[51.2])
    state: Literal["ok", "warning", "alert", "critical", "stopped"]
    updated_ms: int
    period_kind: str = Field("day", examples=["day", "week", "month", "rolling-24h"])
    timezone: str = Field("UTC", examples=["Europe/Berlin"])
    period_start_ms: int | None = None
    period_end_ms: int | None = Field(None, description="None for a rolling window.")
    thresholds: list[float] = Field(default_factory=list)
    forecast: BudgetForecast | None = None


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


class SinkHealth(Snapshot):
    """One sink's (or feed's) counts as `genpulse sinks` wrote them, since its `started_ms`.

    Fields the writer adds later (e.g. `ready_ms` on feeds) pass through unchanged."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    invalid: int = 0
    duplicate: int = 0
    retries: int = 0
    queued: int = Field(0, description="Waiting in the outbox, plus the batch being tried.")
    reasons: dict[str, int] = Field(
        default_factory=dict, examples=[{"event_name_reserved_prefix": 1}]
    )
    last_error: str = ""
    last_error_ms: int = 0
    last_sent_ms: int = 0
    started_ms: int = 0
    updated_ms: int = Field(
        description="Added by the API: `written_ms` if the writer stamps it, else the newest "
        "of the entry's own timestamps."
    )
    stale: bool = Field(description="Added by the API: `updated_ms` is older than stale_after_ms.")


class SinksHealth(BaseModel):
    """The `<prefix>:sinks:health` hash; `sinks` is empty when no sinks process ever ran."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of_ms": 1764130001000,
                    "stale_after_ms": 6000,
                    "updated_ms": 1764130000123,
                    "stale": False,
                    "sinks": {
                        "ga4": {
                            "sent": 31,
                            "failed": 0,
                            "dropped": 0,
                            "invalid": 2,
                            "duplicate": 0,
                            "retries": 0,
                            "queued": 0,
                            "reasons": {"event_name_reserved_prefix": 1},
                            "last_error": "",
                            "last_error_ms": 0,
                            "last_sent_ms": 1764130000123,
                            "started_ms": 1764129990000,
                            "updated_ms": 1764130000123,
                            "stale": False,
                        }
                    },
                }
            ]
        }
    )

    as_of_ms: int = Field(description="When the API read the hash, epoch ms.")
    stale_after_ms: int = Field(description="3 times GENPULSE_SINKS_HEALTH_S, in ms.")
    updated_ms: int | None = Field(description="The newest entry's updated_ms; null if none.")
    stale: bool = Field(
        description="Every entry is stale: the sinks process is gone or cannot reach Redis. "
        "False when there are no entries."
    )
    sinks: dict[str, SinkHealth]


def _compact(view: type[Snapshot], keep: tuple[str, ...] = ("start_ms", "end_ms")) -> Any:
    """The view as a `user=` or `tag=` slice answers it: the worker keeps compact figures
    (counts, tokens, money) for those high-cardinality dimensions, so any other field may be
    null (docs/api.md, Slicing). `keep` stays as the view has it."""
    nullable: dict[str, Any] = {
        name: (Optional[field.annotation], Field(None, description=field.description))  # noqa: UP045
        for name, field in view.model_fields.items()
        if name not in keep
    }
    return create_model(
        f"Compact{view.__name__}",
        __base__=Ranged if issubclass(view, Ranged) else Snapshot,
        __doc__=f"{view.__name__} of a user= or tag= slice: figures it cannot know are null.",
        **nullable,
    )


def _part_of(view: type[Ranged], name: str, doc: str, **fields: Any) -> type[Snapshot]:
    """A view's fields for part of the events (the range is the enclosing answer's)."""
    return create_model(
        name,
        __base__=view,
        __doc__=doc,
        start_ms=(int | None, Field(None, exclude=True)),  # the enclosing answer's range
        end_ms=(int | None, Field(None, exclude=True)),
        **fields,
    )


def _grouped(compact: type[Ranged], name: str) -> type[Ranged]:
    """A view answered per value of one dimension (`group_by=`), with the top-K remainder.

    Groups of service, environment, model and tier carry every figure; groups of user and
    tag carry the compact figures (others null), hence the compact model."""
    group = _part_of(
        compact,
        f"{name}Group",
        f"{name} of the events whose group-by dimension has `value`.",
        value=(
            str,
            Field(description="The dimension's value; `none`: the events without one."),
        ),
    )
    rest = _part_of(compact, f"{name}Other", f"{name} of the values outside the top-K.")
    return create_model(
        f"Grouped{name}",
        __base__=Ranged,
        __doc__=f"{name} per value of `group_by`: the worker's top-K values in `groups`; "
        "`other` holds what fell out of the top-K (null when nothing did).",
        group_by=(str, Field(examples=["service", "tag:feature"])),
        groups=(list[group], ...),  # type: ignore[valid-type]
        other=(
            rest | None,  # type: ignore[arg-type]
            Field(None, description="Everything outside the top-K values."),
        ),
    )


CompactPerformanceMetrics = _compact(PerformanceMetrics)
CompactCostMetrics = _compact(CostMetrics)
CompactQualityMetrics = _compact(QualityMetrics)
CompactHealthMetrics = _compact(HealthMetrics)
CompactSummary = _compact(Summary)
CompactDailyCostSummary = _compact(DailyCostSummary, keep=("date",))
GroupedPerformanceMetrics = _grouped(CompactPerformanceMetrics, "PerformanceMetrics")
GroupedCostMetrics = _grouped(CompactCostMetrics, "CostMetrics")
GroupedQualityMetrics = _grouped(CompactQualityMetrics, "QualityMetrics")
GroupedHealthMetrics = _grouped(CompactHealthMetrics, "HealthMetrics")
GroupedSummary = _grouped(CompactSummary, "Summary")


class TimeseriesGroup(Snapshot):
    """One group's series of a grouped timeseries."""

    value: str = Field(description="The dimension's value (`none`, `other` as in views).")
    points: list[TimeseriesPoint]


class TopUser(Snapshot):
    user: str
    cost_nanousd: int
    cost_usd: str
    tokens: int
    calls: int = Field(description="Model calls.")
    generations: int = Field(description="generation_started events.")


class TopUsersRest(Snapshot):
    """The users outside the list, summed (the worker's `other` included)."""

    cost_nanousd: int = 0
    cost_usd: str = "0"
    tokens: int = 0
    calls: int = 0
    generations: int = 0


class TopUsers(Ranged):
    """The users who cost (or used, or generated) the most in the range."""

    by: Literal["cost", "tokens", "generations"]
    users: list[TopUser]
    other: TopUsersRest | None = None
    complete: bool = Field(
        description="True when every user of the range is ranked exactly; false when some "
        "fell into the worker's `other` bucket, so a user there could rank higher."
    )

"""GET /v1/metrics/*, /v1/costs/daily, /v1/top/users, /v1/errors/recent: snapshots as the
worker wrote them, optionally sliced by the filters and group-by of api/slicing.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import Role, require
from api.errors import AUTHED, REDIS_DOWN, ApiError
from api.models import (
    CompactCostMetrics,
    CompactDailyCostSummary,
    CompactHealthMetrics,
    CompactPerformanceMetrics,
    CompactQualityMetrics,
    CompactSummary,
    CostMetrics,
    DailyCostSummary,
    GroupedCostMetrics,
    GroupedHealthMetrics,
    GroupedPerformanceMetrics,
    GroupedQualityMetrics,
    GroupedSummary,
    HealthMetrics,
    PerformanceMetrics,
    QualityMetrics,
    RecentError,
    Summary,
    TimeseriesGroup,
    TimeseriesPoint,
    TopUsers,
)
from api.slicing import Slice, slice_params, where_params
from api.timerange import TimeRange, duration_ms, time_range
from streams.slicing import UnsupportedSlice, Where

router = APIRouter(
    tags=["metrics"], dependencies=[Depends(require(Role.READ))], responses={**AUTHED, **REDIS_DOWN}
)
Range = Annotated[TimeRange, Depends(time_range)]
Sliced = Annotated[Slice, Depends(slice_params)]
Filters = Annotated[Where, Depends(where_params)]
GROUPED = (
    "Filters and `group_by` as in docs/api.md (Slicing). A `user=` or `tag=` slice answers "
    "compact figures (others null); with `group_by`, the grouped shape: one entry per value "
    "in `groups`, plus `other`."
)

MAX_POINTS = 10_080
MAX_DAYS = 366
MAX_TOP_USERS = 1_000
FIRST_DAY = date(2000, 1, 7)
LAST_DAY = date(2099, 12, 31)


async def _view(request: Request, view: str, span: TimeRange, cut: Slice) -> Any:
    return await request.app.state.snapshots.read(
        view, span.start_ms, span.end_ms, window=span.window, **cut.reader_kwargs()
    )


@router.get(
    "/v1/metrics/performance",
    response_model=PerformanceMetrics | CompactPerformanceMetrics | GroupedPerformanceMetrics,
    summary="Latency, cache, load",
    description=GROUPED,
)
async def performance(request: Request, span: Range, cut: Sliced) -> Any:
    return await _view(request, "performance", span, cut)


@router.get(
    "/v1/metrics/costs",
    response_model=CostMetrics | CompactCostMetrics | GroupedCostMetrics,
    summary="Model costs and tokens",
    description=GROUPED,
)
async def costs(request: Request, span: Range, cut: Sliced) -> Any:
    return await _view(request, "costs", span, cut)


@router.get(
    "/v1/metrics/quality",
    response_model=QualityMetrics | CompactQualityMetrics | GroupedQualityMetrics,
    summary="Scores and user actions",
    description=GROUPED,
)
async def quality(request: Request, span: Range, cut: Sliced) -> Any:
    return await _view(request, "quality", span, cut)


@router.get(
    "/v1/metrics/health",
    response_model=HealthMetrics | CompactHealthMetrics | GroupedHealthMetrics,
    summary="Errors, retries, breakers",
    description=GROUPED,
)
async def health(request: Request, span: Range, cut: Sliced) -> Any:
    return await _view(request, "health", span, cut)


@router.get(
    "/v1/metrics/summary",
    response_model=Summary | CompactSummary | GroupedSummary,
    summary="The overview cards",
    description=GROUPED,
)
async def summary(request: Request, span: Range, cut: Sliced) -> Any:
    return await _view(request, "summary", span, cut)


@router.get(
    "/v1/metrics/timeseries",
    response_model=list[TimeseriesPoint] | list[TimeseriesGroup],
    summary="One metric per step, for charts",
    description="With `group_by`, one series per value: `[{value, points}]`.",
)
async def timeseries(
    request: Request,
    span: Range,
    cut: Sliced,
    metric: Annotated[
        str,
        Query(
            min_length=1,
            max_length=128,
            description="events, generations, requests_per_second, error_rate, cache_hit_rate, "
            "cost_nanousd, average_quality_score, dead_letters, p50_/p95_/p99_<series> "
            "(e.g. p95_duration_ms, p95_time_to_first_byte_ms).",
            examples=["generations"],
        ),
    ],
    step: Annotated[str, Query(pattern=r"^[1-9][0-9]{0,5}[smhd]$", examples=["1m"])] = "1m",
) -> Any:
    step_ms = duration_ms(step) or 0
    if step_ms < 60_000:
        raise ApiError(422, "invalid_step", "the smallest step is 1m (the worker's window)")
    if (span.end_ms - span.start_ms) // step_ms > MAX_POINTS:
        raise ApiError(422, "invalid_step", f"at most {MAX_POINTS} points; use a larger step")
    try:
        return await request.app.state.snapshots.read(
            "timeseries",
            metric,
            span.start_ms,
            span.end_ms,
            step_ms,
            window=(span.window, step_ms) if span.window else None,
            **cut.reader_kwargs(),
        )
    except UnsupportedSlice:
        raise  # 422 unsupported_filter (api/errors.py), not an unknown metric
    except ValueError as exc:  # an unknown metric name; the reader lists the known ones
        raise ApiError(422, "unknown_metric", str(exc)) from None


@router.get(
    "/v1/costs/daily",
    response_model=list[DailyCostSummary] | list[CompactDailyCostSummary],
    summary="Daily cost summaries over a date range",
)
async def daily_costs(
    request: Request,
    where: Filters,
    from_: Annotated[
        date | None, Query(alias="from", description="First day (default: 7 days ago).")
    ] = None,
    to: Annotated[date | None, Query(description="Last day, inclusive (default: today).")] = None,
) -> Any:
    last = to or datetime.now(UTC).date()
    if not FIRST_DAY <= last <= LAST_DAY or (from_ is not None and from_ < FIRST_DAY):
        raise ApiError(422, "invalid_range", "days must lie between 2000-01-07 and 2099-12-31")
    first = from_ or last - timedelta(days=6)
    if first > last:
        raise ApiError(422, "invalid_range", "'from' must not be after 'to'")
    if (last - first).days >= MAX_DAYS:
        raise ApiError(422, "invalid_range", f"at most {MAX_DAYS} days per request")
    snapshots = request.app.state.snapshots
    cut = Slice(where)
    return await snapshots.read(
        "daily_costs", first.isoformat(), last.isoformat(), **cut.reader_kwargs()
    )


class RankBy(StrEnum):
    COST = "cost"
    TOKENS = "tokens"
    GENERATIONS = "generations"


@router.get(
    "/v1/top/users",
    response_model=TopUsers,
    summary="The users who cost, used or generated the most in a range",
)
async def top_users(
    request: Request,
    span: Range,
    where: Filters,
    by: Annotated[RankBy, Query(description="What to rank by.")] = RankBy.COST,
    limit: Annotated[int, Query(ge=1, le=MAX_TOP_USERS)] = 20,
) -> Any:
    cut = Slice(where)
    return await request.app.state.snapshots.read(
        "top_users",
        span.start_ms,
        span.end_ms,
        by.value,
        limit,
        window=(span.window, by.value, limit) if span.window else None,
        **cut.reader_kwargs(),
    )


@router.get("/v1/errors/recent", response_model=list[RecentError], summary="The latest errors")
async def recent_errors(request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 100) -> Any:
    return await request.app.state.reader.recent_errors(limit)

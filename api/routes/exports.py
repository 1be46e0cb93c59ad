"""GET /v1/export/{name}.csv and .json: metric groups, daily costs and alerts over a range.

A metric group's export is the group's metrics endpoint applied to consecutive buckets of
`step` across the range (one bucket, the whole range, when no step is given), so its numbers
equal what /v1/metrics/<group> answers for the same buckets. Rows stream one bucket at a time.
Filters and `group_by` (api/slicing.py) apply as on the metrics routes; daily costs take
filters only, alerts neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.auth import Role, require
from api.errors import AUTHED, REDIS_DOWN, ApiError, Responses
from api.export_format import (
    ALERT_COLUMNS,
    DAILY_COLUMNS,
    GROUP_COLUMNS,
    csv_lines,
    flatten,
    grouped_rows,
    json_array,
    scalar_paths,
)
from api.models import CostMetrics, HealthMetrics, PerformanceMetrics, QualityMetrics, Summary
from api.slicing import Slice, slice_params
from api.timerange import TimeRange, duration_ms, time_range

router = APIRouter(
    tags=["exports"], dependencies=[Depends(require(Role.READ))], responses={**AUTHED, **REDIS_DOWN}
)

MAX_BUCKETS = 10_080
MAX_ALERTS = 10_000


class Export(StrEnum):
    PERFORMANCE = "performance"
    COSTS = "costs"
    QUALITY = "quality"
    HEALTH = "health"
    SUMMARY = "summary"
    DAILY_COSTS = "daily-costs"
    ALERTS = "alerts"


VIEWS: dict[Export, type[BaseModel]] = {
    Export.PERFORMANCE: PerformanceMetrics,
    Export.COSTS: CostMetrics,
    Export.QUALITY: QualityMetrics,
    Export.HEALTH: HealthMetrics,
    Export.SUMMARY: Summary,
}
"""The response model of each metric group: a grouped CSV's columns are its fixed fields."""

Name = Annotated[Export, Path(description="What to export.")]
Range = Annotated[TimeRange, Depends(time_range)]
Sliced = Annotated[Slice, Depends(slice_params)]
Step = Annotated[
    str | None,
    Query(
        pattern=r"^[1-9][0-9]{0,5}[smhd]$",
        description="Bucket size for metric groups (≥ 1m); default one bucket for the range.",
        examples=["1h"],
    ),
]


def _buckets(span: TimeRange, step: str | None) -> list[tuple[int, int]]:
    if step is None:
        return [(span.start_ms, span.end_ms)]
    step_ms = duration_ms(step) or 0
    if step_ms < 60_000:
        raise ApiError(422, "invalid_step", "the smallest step is 1m (the worker's window)")
    if (span.end_ms - span.start_ms) / step_ms > MAX_BUCKETS:
        raise ApiError(422, "invalid_step", f"at most {MAX_BUCKETS} buckets; use a larger step")
    starts = range(span.start_ms, span.end_ms, step_ms)
    return [(start, min(start + step_ms, span.end_ms)) for start in starts]


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


def _check_slice(name: Export, cut: Slice) -> None:
    if name is Export.ALERTS and not cut.is_empty():
        raise ApiError(422, "invalid_filter", "the alerts export takes no filters or group_by")
    if name is Export.DAILY_COSTS and cut.group_by is not None:
        raise ApiError(422, "invalid_filter", "daily-costs takes filters but no group_by")


async def _items(
    request: Request, name: Export, span: TimeRange, step: str | None, cut: Slice
) -> AsyncIterator[dict[str, Any]]:
    reader = request.app.state.reader
    sliced = cut.reader_kwargs()
    if name is Export.DAILY_COSTS:
        days = await reader.daily_costs(_day(span.start_ms), _day(span.end_ms - 1), **sliced)
        for day in days:
            yield day
    elif name is Export.ALERTS:
        found = await reader.alerts(since_ms=span.start_ms, limit=MAX_ALERTS)
        for alert in sorted(found, key=lambda a: (a.get("time_ms", 0), str(a.get("id")))):
            if alert.get("time_ms", 0) < span.end_ms:
                yield alert
    else:
        fetch: Callable[..., Any] = getattr(reader, name.value)
        for start, end in _buckets(span, step):
            yield {"from_ms": start, "to_ms": end, "data": await fetch(start, end, **sliced)}


async def _csv(
    items: AsyncIterator[dict[str, Any]], name: Export, group_by: str | None
) -> AsyncIterator[bytes]:
    if name is Export.ALERTS:
        yield csv_lines([ALERT_COLUMNS])
        async for alert in items:
            yield csv_lines([[alert.get(column) for column in ALERT_COLUMNS]])
    elif name is Export.DAILY_COSTS:
        yield csv_lines([DAILY_COLUMNS])
        async for day in items:
            label = day.get("date") or day.get("day")
            rows: list[tuple[Any, ...]] = [
                (label, path, value) for path, value in flatten(day) if path not in ("date", "day")
            ]
            yield csv_lines(rows)
    elif group_by is not None:
        paths = scalar_paths(VIEWS[name])
        yield csv_lines([("from_ms", "to_ms", group_by, *paths)])
        async for bucket in items:
            span = (bucket["from_ms"], bucket["to_ms"])
            yield csv_lines(grouped_rows(span, bucket["data"], paths))
    else:
        yield csv_lines([GROUP_COLUMNS])
        async for bucket in items:
            span = (bucket["from_ms"], bucket["to_ms"])
            yield csv_lines([(*span, p, v) for p, v in flatten(bucket["data"])])


async def _prefetched(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Read the first item before answering, so that Redis being down (or a bad step) still
    gives a proper error status instead of a broken 200 stream."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        first = None

    async def replay() -> AsyncIterator[dict[str, Any]]:
        if first is None:
            return
        yield first
        async for item in items:
            yield item

    return replay()


CSV_DOC: Responses = {
    200: {
        "description": "CSV with a header row: long form `from_ms,to_ms,field,value`; with "
        "`group_by`, one row per group: `from_ms,to_ms,<group_by>,<field>…`.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
JSON_DOC: Responses = {
    200: {
        "description": "A JSON array, streamed.",
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
    }
}


@router.get(
    "/v1/export/{name}.csv",
    response_class=StreamingResponse,
    responses=CSV_DOC,
    summary="Export as CSV",
)
async def export_csv(
    request: Request, name: Name, span: Range, cut: Sliced, step: Step = None
) -> StreamingResponse:
    _check_slice(name, cut)
    items = await _prefetched(_items(request, name, span, step, cut))
    body = _csv(items, name, cut.group_by)
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="genpulse-{name.value}.csv"'},
    )


@router.get(
    "/v1/export/{name}.json",
    response_class=StreamingResponse,
    responses=JSON_DOC,
    summary="Export as JSON",
)
async def export_json(
    request: Request, name: Name, span: Range, cut: Sliced, step: Step = None
) -> StreamingResponse:
    _check_slice(name, cut)
    items = await _prefetched(_items(request, name, span, step, cut))
    body = json_array(items)
    return StreamingResponse(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="genpulse-{name.value}.json"'},
    )

"""GET /metrics: the current aggregates (and the API's own counters) for Prometheus/Grafana."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from api.auth import Role, require
from api.errors import AUTHED, REDIS_DOWN
from api.exposition import SLICED_DIMENSIONS, SnapshotCollector
from api.settings import ApiSettings
from api.sinks_health import read_sinks_health
from api.timerange import Window, window_ending_now

router = APIRouter(tags=["prometheus"])


@router.get(
    "/metrics",
    dependencies=[Depends(require(Role.READ))],
    summary="Prometheus exposition of the last 5 minutes, today's costs and budgets, sinks",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4.",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        },
        **AUTHED,
        **REDIS_DOWN,
    },
)
async def metrics(request: Request) -> Response:
    snapshots = request.app.state.snapshots
    settings: ApiSettings = request.app.state.settings
    now_ms = time.time_ns() // 1_000_000
    span = window_ending_now(Window.FIVE_MINUTES, now_ms)
    day_start = span.end_ms - span.end_ms % 86_400_000
    recent, today = (span.start_ms, span.end_ms), (day_start, span.end_ms)
    recent_by, today_by = {}, {}
    for dim in SLICED_DIMENSIONS:
        recent_by[dim] = await snapshots.read("summary", *recent, window="5m", group_by=dim)
        today_by[dim] = await snapshots.read("summary", *today, window="today", group_by=dim)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        SnapshotCollector(
            performance=await snapshots.read("performance", *recent, window="5m"),
            health=await snapshots.read("health", *recent, window="5m"),
            quality=await snapshots.read("quality", *recent, window="5m"),
            costs=await snapshots.read("costs", *today, window="today"),
            budgets=await request.app.state.reader.budgets(),
            sinks=(
                await read_sinks_health(
                    request.app.state.redis,
                    settings.key_prefix,
                    now_ms,
                    settings.sinks_stale_after_ms,
                )
            )["sinks"],
            recent_by=recent_by,
            today_by=today_by,
        )
    )
    text = generate_latest(registry) + generate_latest(request.app.state.api_metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)

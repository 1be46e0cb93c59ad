"""GET /metrics: the current aggregates (and the API's own counters) for Prometheus/Grafana."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from api.auth import Role, require
from api.errors import AUTHED, REDIS_DOWN
from api.exposition import SnapshotCollector

router = APIRouter(tags=["prometheus"])

WINDOW_MS = 5 * 60_000


@router.get(
    "/metrics",
    dependencies=[Depends(require(Role.READ))],
    summary="Prometheus exposition of the last 5 minutes and today's costs and budgets",
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
    reader = request.app.state.reader
    end = time.time_ns() // 1_000_000
    start = end - WINDOW_MS
    day_start = end - end % 86_400_000
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        SnapshotCollector(
            performance=await reader.performance(start, end),
            health=await reader.health(start, end),
            quality=await reader.quality(start, end),
            costs=await reader.costs(day_start, end),
            budgets=await reader.budgets(),
        )
    )
    text = generate_latest(registry) + generate_latest(request.app.state.api_metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)

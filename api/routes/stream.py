"""GET /v1/stream: Server-Sent Events with a fresh snapshot whenever the worker publishes one.

Each event is `event: snapshot`, `id: <growing number>`, `data: {"id", "time_ms", "from_ms",
"to_ms", <group>: {...}}`. A `: heartbeat` comment goes out when nothing else did for
GENPULSE_API_SSE_HEARTBEAT_S. On reconnect, browsers send Last-Event-ID; the newest snapshot
is sent right away only when it is newer than that id (snapshots are whole state, so the
newest one is all a client missed). If Redis is unreachable, an `event: unavailable` names it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from api.auth import Role, require
from api.errors import AUTHED
from api.live import UpdateFeed
from api.timerange import Window, window_ending_now

router = APIRouter(tags=["live"])


class Group(StrEnum):
    SUMMARY = "summary"
    PERFORMANCE = "performance"
    COSTS = "costs"
    QUALITY = "quality"
    HEALTH = "health"


@router.get(
    "/v1/stream",
    dependencies=[Depends(require(Role.READ))],
    summary="Live snapshots as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless text/event-stream.",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "example": 'id: 1764130000\nevent: snapshot\ndata: {"id": 1764130000}\n\n',
                }
            },
        },
        **AUTHED,
    },
)
async def stream(
    request: Request,
    groups: Annotated[list[Group] | None, Query(description="Default: summary.")] = None,
    window: Annotated[
        Window, Query(description="Range of each snapshot, ending now.")
    ] = Window.ONE_HOUR,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    last_id = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    chosen = list(dict.fromkeys(groups or [Group.SUMMARY]))
    body = _events(request, chosen, window, last_id)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, groups: list[Group], window: Window, last_id: int | None
) -> AsyncIterator[bytes]:
    feed: UpdateFeed = request.app.state.feed
    heartbeat_s: float = request.app.state.settings.api_sse_heartbeat_s
    yield b"retry: 2000\n\n"
    sent = last_id if last_id is not None else -1
    if sent < feed.latest_id:
        sent = feed.latest_id
        yield await _snapshot_event(request, groups, window, sent)
    while not await request.is_disconnected():
        newer = await feed.wait_newer(sent, heartbeat_s)
        if newer is None:
            yield b": heartbeat\n\n"
            continue
        sent = newer
        yield await _snapshot_event(request, groups, window, sent)


async def _snapshot_event(
    request: Request, groups: list[Group], window: Window, event_id: int
) -> bytes:
    now = time.time_ns() // 1_000_000
    span = window_ending_now(window, now)
    payload: dict[str, Any] = {
        "id": event_id,
        "time_ms": now,
        "from_ms": span.start_ms,
        "to_ms": span.end_ms,
    }
    try:
        for group in groups:
            read = request.app.state.snapshots.read
            payload[group.value] = await read(group.value, span.start_ms, span.end_ms, fresh=True)
    except (RedisError, OSError) as exc:
        problem = {
            "error": "redis_unavailable",
            "message": f"Redis is unreachable ({type(exc).__name__})",
        }
        return b"event: unavailable\ndata: " + orjson.dumps(problem) + b"\n\n"
    data = orjson.dumps(payload, default=str)
    return b"id: %d\nevent: snapshot\ndata: %s\n\n" % (event_id, data)

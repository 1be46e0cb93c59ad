"""GET /v1/stream over a real uvicorn and real Redis pub/sub: delivery, heartbeats, resume."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from api.settings import ApiSettings
from tests.api.conftest import auth
from tests.api.server import running_api
from tests.api.sse import SseReader

pytestmark = pytest.mark.integration


@asynccontextmanager
async def sse(base: str, last_id: str | None = None, query: str = "") -> AsyncIterator[SseReader]:
    headers = auth("read") | ({"Last-Event-ID": last_id} if last_id else {})
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=None)) as client,
        client.stream("GET", f"/v1/stream{query}", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseReader(response.aiter_lines())


async def publish(settings: ApiSettings) -> None:
    client = aioredis.from_url(settings.redis_url)
    try:
        notice = {"kind": "updated", "written_ms": time.time_ns() // 1_000_000}
        await client.publish(f"{settings.key_prefix}:updates", orjson.dumps(notice))
    finally:
        await client.aclose()


async def test_snapshot_on_connect_then_one_within_2s_of_each_publish(
    api_settings: ApiSettings,
) -> None:
    with running_api(api_settings) as base:
        async with sse(base, query="?groups=summary&groups=costs") as stream:
            first = await stream.next_snapshot(10)
            body = orjson.loads(first.data)
            assert {"summary", "costs"} <= set(body)
            assert body["summary"]["total_generations"] == 0
            await stream.next(5)  # a heartbeat: the subscription is surely in place
            for _ in range(2):
                await publish(api_settings)
                fresh = await stream.next_snapshot(2)  # the bound
                assert int(fresh.id or 0) > int(first.id or 0)
                first = fresh


async def test_heartbeats_keep_an_idle_stream_alive(api_settings: ApiSettings) -> None:
    with running_api(api_settings) as base:
        async with sse(base) as stream:
            await stream.next_snapshot(10)
            beat = await stream.next(5)
            assert beat.comments == ["heartbeat"] and beat.event == "message"


async def test_resume_sends_only_what_the_client_has_not_seen(api_settings: ApiSettings) -> None:
    with running_api(api_settings) as base:
        async with sse(base) as stream:
            seen = await stream.next_snapshot(10)
        async with sse(base, last_id=seen.id) as stream:
            blocks = [await stream.next(5) for _ in range(3)]  # retry hint, then heartbeats
            assert [b.event for b in blocks] == ["message"] * 3  # up to date: no snapshot
            assert blocks[-1].comments == ["heartbeat"]
            await publish(api_settings)
            fresh = await stream.next_snapshot(2)
            assert int(fresh.id or 0) > int(seen.id or 0)
        async with sse(base, last_id=seen.id) as stream:
            missed = await stream.next_snapshot(5)  # an update happened since `seen`
            assert missed.id == fresh.id

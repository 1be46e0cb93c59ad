"""Redis stopped and restarted under a running API: 503s naming Redis, then correct data.

Uses a Redis of its own (never the shared one) and the worker's own snapshot writer to put
a known partial in it, before the outage and again after (as the worker does on return).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from api.settings import ApiSettings
from genpulse.devservices import start_redis
from streams import keys
from streams.partial import Partial, Targets
from streams.snapshots import SnapshotWriter
from tests.api.conftest import auth
from tests.api.server import running_api
from tests.api.sse import SseReader

pytestmark = pytest.mark.integration


async def write_minute(redis_url: str, prefix: str, generations: int) -> None:
    partial = Partial()
    for _ in range(generations):
        partial.add_event("generation_started", {}, Targets())
    minute = keys.floor(time.time_ns() // 1_000_000, keys.MINUTE_MS) - keys.MINUTE_MS
    writer = SnapshotWriter(redis_url, prefix)
    writer.put(keys.minute(prefix, minute), "events:0", orjson.dumps(partial.to_json()), 3600)
    try:
        assert await writer.flush()
    finally:
        await writer.redis.aclose()


def poll(client: httpx.Client, path: str, status: int, timeout_s: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(path, headers=auth("read"))
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


async def test_redis_down_gives_503_then_recovers_by_itself(
    api_settings: ApiSettings, tmp_path: Path
) -> None:
    redis = start_redis(tmp_path / "redis")
    settings = api_settings.model_copy(update={"redis_url": redis.url, "api_redis_timeout_s": 1.0})
    try:
        await write_minute(redis.url, settings.key_prefix, 7)
        with running_api(settings) as base, httpx.Client(base_url=base, timeout=30) as client:
            before = client.get("/v1/metrics/summary?window=5m", headers=auth("read"))
            assert before.status_code == 200 and before.json()["total_generations"] == 7

            redis.stop()
            down = poll(client, "/v1/metrics/summary?window=5m", 503)
            assert down.status_code == 503
            assert down.json()["error"] == "redis_unavailable"
            assert "Redis" in down.json()["message"]
            assert client.get("/v1/export/summary.csv", headers=auth("read")).status_code == 503
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["redis"] != "ok"
            async with (
                httpx.AsyncClient(base_url=base, timeout=30) as live,
                live.stream("GET", "/v1/stream", headers=auth("read")) as response,
            ):
                stream = SseReader(response.aiter_lines())
                blocks = [await stream.next(10) for _ in range(2)]  # retry hint, then news
                assert blocks[1].event == "unavailable"
                assert orjson.loads(blocks[1].data)["error"] == "redis_unavailable"

            redis = start_redis(tmp_path / "redis", port=redis.port)
            await write_minute(redis.url, settings.key_prefix, 9)
            after = poll(client, "/v1/metrics/summary?window=5m", 200)
            assert after.status_code == 200, after.text
            assert after.json()["total_generations"] == 9
            assert client.get("/readyz").status_code == 200
    finally:
        redis.stop()

"""End to end: the instrumented anthropic client -> Kafka -> the real worker -> the API's figures.

The oracle is the loopback server's script: the usage it reported for each answer and the
failures it served. The API's costs must count exactly those tokens and the SDK's own
priced total; its health must count each error by type and each of the client's retries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from api.settings import ApiSettings
from producers import GenPulse
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.anthropic_server import (
    MessagesServer,
    Overloaded,
    RateLimited,
    Reply,
    ServerError,
    Usage,
)
from tests.api.conftest import api_settings, auth  # noqa: F401  (the fixture, re-exported)
from tests.api.server import running_api
from tests.streams.helpers import WorkerProcess

pytestmark = pytest.mark.integration

ASK: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Three benefits, please."}],
}
USAGE = Usage(
    input_tokens=2000,
    output_tokens=450,
    cache_write_5m_tokens=300,
    cache_write_1h_tokens=500,
    cache_read_tokens=1000,
)


@pytest.fixture
def worker_settings(api_settings: ApiSettings) -> WorkerSettings:  # noqa: F811
    return WorkerSettings(
        kafka_bootstrap=api_settings.kafka_bootstrap,
        redis_url=api_settings.redis_url,
        topic_prefix=api_settings.topic_prefix,
        app_id=f"{api_settings.topic_prefix}-worker",
        snapshot_interval_s=0.5,
        topic_partitions=1,
    )


@pytest.fixture
def worker(worker_settings: WorkerSettings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(worker_settings, tmp_path, "w0")
    yield process
    process.stop()


def drive(client: anthropic.Anthropic, server: MessagesServer) -> None:
    """Five charged calls (one with two retries, one abandoned stream) and two failed ones."""
    server.script(Reply(usage=USAGE))
    client.messages.create(**ASK)
    server.script(RateLimited(), Reply(usage=USAGE))
    client.messages.create(**ASK)
    server.script(Reply(usage=USAGE))
    for _ in client.messages.create(stream=True, **ASK):
        pass
    server.script(Reply(usage=USAGE, pieces=4))
    with client.messages.create(stream=True, **ASK) as stream:
        next(iter(stream))  # message_start only: 2000 input tokens and the first output one
    server.script(Overloaded())
    with pytest.raises(anthropic.OverloadedError):
        client.with_options(max_retries=0).messages.create(**ASK)
    server.script(*(ServerError(retry_after="0.01") for _ in range(3)))
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(**ASK)


async def drive_async(client: anthropic.AsyncAnthropic, server: MessagesServer) -> None:
    server.script(Reply(usage=USAGE))
    async with client.messages.stream(**ASK) as stream:
        await stream.get_final_message()


async def test_instrumented_calls_reach_the_api_costs_and_health(
    api_settings: ApiSettings,  # noqa: F811
    worker_settings: WorkerSettings,
    worker: WorkerProcess,
    messages_server: MessagesServer,
) -> None:
    await ensure_topics(worker_settings)
    worker.start()
    pulse = GenPulse(
        service="uvp-generator",
        bootstrap_servers=api_settings.kafka_bootstrap,
        topic_prefix=api_settings.topic_prefix,
        follow_budget_state=False,
    )
    try:
        sync = pulse.instrument_anthropic(
            anthropic.Anthropic(base_url=messages_server.url, api_key="test-key")
        )
        aio = pulse.instrument_anthropic(
            anthropic.AsyncAnthropic(base_url=messages_server.url, api_key="test-key")
        )
        with pulse.session("sess-e2e", user_id="user-e2e"):
            await asyncio.to_thread(drive, sync, messages_server)
            await drive_async(aio, messages_server)
        assert await pulse.aflush(30)
        sdk_total = pulse.costs.get_costs()["total_cost_nanousd"]
    finally:
        pulse.close(5)
    assert sdk_total > 0

    now = time.time_ns() // 1_000_000
    window = {"from": now - 3_600_000, "to": now + 3_600_000}
    with running_api(api_settings) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:

            async def get(group: str) -> dict[str, Any]:
                got = await http.get(f"/v1/metrics/{group}", params=window, headers=auth("read"))
                assert got.status_code == 200, got.text
                body: dict[str, Any] = got.json()
                return body

            deadline = time.monotonic() + 120
            while (costs := await get("costs"))["total_calls"] < 5:
                assert time.monotonic() < deadline, f"not aggregated: {costs}\n{worker.log_tail()}"
                await asyncio.sleep(0.5)
            health = await get("health")

    assert costs["total_calls"] == 5
    assert costs["total_input_tokens"] == 5 * 2000
    assert costs["total_output_tokens"] == 4 * 450 + 1
    assert costs["total_cache_read_tokens"] == 5 * 1000
    assert costs["total_cache_write_tokens"] in (5 * 800, 5 * 300)  # 1-hour writes apart or not
    assert costs["total_cost_nanousd"] == sdk_total
    assert costs["unpriced_calls"] == 0
    assert [row["user_id"] for row in costs["by_user"]] == ["user-e2e"]
    assert health["errors_by_type"] == {"api_error": 3, "overloaded": 1, "rate_limit": 1}
    # the failed call made 3 attempts (the client's default of 2 retries)
    assert health["retries"] == {"attempted": 3, "succeeded": 1, "failed": 1, "failed_attempts": 3}

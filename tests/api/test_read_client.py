"""api.client.MetricsClient against the running API: SDK -> Kafka -> worker -> Redis -> API,
read back as the API's own models, equal to the JSON the endpoints serve."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.client import MetricsApiError, MetricsClient
from api.models import CostMetrics, PerformanceMetrics, QualityMetrics
from api.settings import ApiSettings
from producers import GenPulse
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.api.conftest import READ_TOKEN
from tests.api.server import running_api
from tests.streams.helpers import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(api_settings: ApiSettings, tmp_path: Path) -> Iterator[WorkerProcess]:
    settings = WorkerSettings(
        kafka_bootstrap=api_settings.kafka_bootstrap,
        redis_url=api_settings.redis_url,
        topic_prefix=api_settings.topic_prefix,
        app_id=f"{api_settings.topic_prefix}-worker",
        snapshot_interval_s=0.5,
    )
    asyncio.run(ensure_topics(settings))
    process = WorkerProcess(settings, tmp_path, "w0").start()
    yield process
    process.stop()


def test_the_read_client_returns_the_apis_models_with_the_fleets_figures(
    api_settings: ApiSettings, worker: WorkerProcess
) -> None:
    pulse = GenPulse(
        service="read-client-test",
        bootstrap_servers=api_settings.kafka_bootstrap,
        topic_prefix=api_settings.topic_prefix,
        follow_budget_state=False,
    )
    spent_nanousd = 0
    for i in range(4):
        sid = f"s-{i}"
        pulse.events.track("generation_started", session_id=sid, user_id="alice")
        pulse.events.track("cache_hit" if i else "cache_miss", session_id=sid)
        usd = pulse.costs.record_model_call("claude-3-haiku-20240307", 1000, 200, user_id="alice")
        assert usd is not None
        spent_nanousd += int(usd * 1_000_000_000)
        pulse.events.track("generation_completed", session_id=sid, user_id="alice")
        pulse.quality.record_approval(True, 0, session_id=sid, user_id="alice")
    assert pulse.flush(timeout=30)
    pulse.close(timeout=5)

    with running_api(api_settings) as base, MetricsClient(base, READ_TOKEN) as metrics:
        deadline = time.monotonic() + 120
        costs = metrics.costs(window="1h")
        while costs.total_calls < 4 and time.monotonic() < deadline:
            assert worker.alive(), worker.log_tail()
            time.sleep(0.5)
            costs = metrics.costs(window="1h")
        assert isinstance(costs, CostMetrics)
        assert costs.total_calls == 4
        assert costs.total_cost_nanousd == spent_nanousd > 0

        performance = metrics.performance(window="1h")
        assert isinstance(performance, PerformanceMetrics)
        assert (performance.cache_hits, performance.cache_misses) == (3, 1)
        assert performance.cache_hit_rate == 0.75
        quality = metrics.quality(window="1h")
        assert isinstance(quality, QualityMetrics) and quality.generations_completed == 4
        end_ms = int(time.time() * 1000) + 60_000
        ranged = metrics.costs(from_=end_ms - 3_600_000, to=end_ms)
        assert ranged.total_calls == 4
        assert metrics.daily_costs()[-1].total_calls == 4
        assert metrics.budgets() == []

        # the models keep every field the endpoint serves (extra fields included)
        raw = httpx.get(
            f"{base}/v1/metrics/quality",
            params={"window": "1h"},
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
        ).json()
        assert QualityMetrics.model_validate(raw).model_dump(mode="json") == raw

        with pytest.raises(MetricsApiError) as refused:
            MetricsClient(base, "not-a-token").summary()
        assert refused.value.status == 401 and refused.value.code == "unauthorized"
        with pytest.raises(MetricsApiError, match="invalid_step"):
            metrics.timeseries("generations", window="1h", step="10s")

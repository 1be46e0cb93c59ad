"""GET /metrics: parseable exposition, unit-suffixed names, quantiles in seconds."""

from __future__ import annotations

import time

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from api.settings import ApiSettings
from streams import keys
from streams.partial import Partial, Targets
from streams.snapshots import SnapshotWriter
from tests.api.conftest import auth


async def test_exposition_carries_the_snapshot_in_seconds(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    partial = Partial()
    for ms in (100.0, 200.0, 300.0, 400.0):
        partial.add_event("phase_completed", {"phase": "analysis", "duration_ms": ms}, Targets())
    partial.add_event("cache_hit", {}, Targets())
    minute = keys.floor(time.time_ns() // 1_000_000, keys.MINUTE_MS) - keys.MINUTE_MS
    writer = SnapshotWriter(api_settings.redis_url, api_settings.key_prefix)
    prefix = api_settings.key_prefix
    writer.put(keys.minute(prefix, minute), "events:0", orjson.dumps(partial.to_json()), 600)
    assert await writer.flush()
    await writer.redis.aclose()

    response = await client.get("/metrics", headers=auth("read"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    phases = families["genpulse_phase_duration_seconds"]
    assert phases.type == "summary"
    samples = {
        (s.name, s.labels.get("phase"), s.labels.get("quantile")): s.value for s in phases.samples
    }
    assert samples[("genpulse_phase_duration_seconds_count", "analysis", None)] == 4
    assert abs(samples[("genpulse_phase_duration_seconds_sum", "analysis", None)] - 1.0) < 1e-9
    p50 = samples[("genpulse_phase_duration_seconds", "analysis", "0.5")]
    assert 0.198 <= p50 <= 0.202  # 200 ms within the sketch's 1 %
    assert families["genpulse_cache_hit_ratio"].samples[0].value == 1.0
    assert "genpulse_api_requests" in families  # the API's own counters ride along

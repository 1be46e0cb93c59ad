"""Acceptance (issue 11): every one of the specification's 24 event types, tracked through the
Python SDK with the specification's names, goes SDK -> Kafka -> worker -> Redis -> API and
shows up in the figure docs/metrics.md says it feeds; the whole seeded workload equals the
oracle written from the specification's definitions (tests/streams/workload.py); no dead
letters. The browser path (collector.js -> /v1/collect) is tests/web/test_collector.py."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from api.settings import ApiSettings
from producers import GenPulse
from producers.events import SEED_EVENT_TYPES
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.api.server import running_api
from tests.api.test_e2e import HttpReader, wait_until, worker, worker_settings  # noqa: F401
from tests.streams.checks import assert_matches
from tests.streams.helpers import WorkerProcess, read_topic
from tests.streams.workload import Oracle, workload

pytestmark = pytest.mark.integration

EVENTS = 3_000

FEEDS: dict[str, tuple[str, ...]] = {
    "generation_started": ("summary", "total_generations"),
    "phase_started": ("performance", "phases_started", "analysis"),
    "phase_completed": ("performance", "phases", "analysis", "count"),
    "generation_completed": ("quality", "generations_completed"),
    "generation_failed": ("health", "generations_failed"),
    "generation_canceled": ("health", "generations_canceled"),
    "uvp_approved": ("quality", "approvals"),
    "uvp_edited": ("quality", "edits_by_kind", "uvp_edited"),
    "uvp_regenerated": ("quality", "regenerations"),
    "profile_selected": ("quality", "profile_selections"),
    "profile_deselected": ("quality", "profile_deselections"),
    "transformation_edited": ("quality", "edits_by_kind", "transformation_edited"),
    "benefit_reordered": ("quality", "edits_by_kind", "benefit_reordered"),
    "cache_hit": ("performance", "cache_hits"),
    "cache_miss": ("performance", "cache_misses"),
    "model_upgraded": ("quality", "upgrades"),
    "stream_started": ("performance", "streams", "started"),
    "stream_completed": ("performance", "streams", "completed"),
    "error_occurred": ("health", "errors"),
    "retry_attempted": ("health", "retries", "attempted"),
    "retry_succeeded": ("health", "retries", "succeeded"),
    "retry_failed": ("health", "retries", "failed"),
    "fallback_triggered": ("health", "fallbacks"),
    "circuit_breaker_opened": ("health", "circuit_breaker_events", "opened"),
}
"""Each specification type and the API figure that counts it (docs/metrics.md, "Feeds")."""


def test_feeds_names_every_specification_type_once() -> None:
    assert list(FEEDS) == [t.value for t in SEED_EVENT_TYPES]


def figure(views: dict[str, dict[str, Any]], path: tuple[str, ...]) -> Any:
    value: Any = views[path[0]]
    for key in path[1:]:
        value = value[key]
    return value


async def test_every_specification_type_reaches_its_figure_through_the_sdk(
    api_settings: ApiSettings,
    worker_settings: WorkerSettings,  # noqa: F811
    worker: WorkerProcess,  # noqa: F811
) -> None:
    await ensure_topics(worker_settings)
    worker.start()
    now = time.time_ns() // 1_000_000
    start, end = now - 10 * 60_000, now + 30 * 60_000
    events = workload(23, EVENTS, now, 0)
    assert {e["type"] for e in events} >= set(FEEDS)
    pulse = GenPulse(
        service="vocab-e2e",
        bootstrap_servers=api_settings.kafka_bootstrap,
        topic_prefix=api_settings.topic_prefix,
    )
    try:
        for e in events:  # the SDK stamps the time; the oracle reads what reached Kafka
            pulse.events.track(
                e["type"], e["data"], session_id=e["session_id"], user_id=e["user_id"]
            )
        assert pulse.events.flush(60)
        assert pulse.stats().dropped == 0
    finally:
        pulse.close()
    oracle = Oracle()
    for record in await read_topic(api_settings.kafka_bootstrap, api_settings.topic("events")):
        oracle.feed(record.value)
    assert sum(oracle.count.values()) == len(events) and oracle.dead == 0
    with running_api(api_settings) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            http = HttpReader(client)

            async def drained() -> bool:
                return (await http.summary(start, end))["events"] == len(events)

            await wait_until(drained, 180, "the SDK's events aggregated", worker)
            await assert_matches(http, oracle, start, end)
            views = {g: await http._get(g, start, end) for g in ("summary", "performance",
                                                                  "quality", "health")}  # fmt: skip
            for kind, path in FEEDS.items():
                got = figure(views, path)
                expected = oracle.count[kind]
                if kind.startswith("phase_"):  # the figure is the analysis phase's
                    expected = sum(e["type"] == kind and e["data"]["phase"] == "analysis"
                                   for e in events)  # fmt: skip
                assert got == expected and got > 0, (kind, path, got, expected)
            assert views["health"]["dead_letters"] == 0

"""Acceptance (issue 11), the browser path: a seeded workload that uses only the
specification's event names, tracked by collector.js in real Chromium (one collector per
session, as each tab has its own), POSTed to /v1/collect, aggregated by a real worker, gives
the figures of the oracle written from the specification's definitions; no dead letters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from producers.events import SEED_EVENT_TYPES
from streams.settings import WorkerSettings
from tests.api.conftest import READ_TOKEN  # the token HttpReader sends
from tests.api.kafka_read import read_topic
from tests.api.test_e2e import HttpReader
from tests.streams.checks import assert_matches
from tests.streams.helpers import WorkerProcess
from tests.streams.workload import Oracle, workload
from tests.web.browser import ApiProcess
from tests.web.conftest import INGEST_KEY

pytestmark = pytest.mark.integration

EVENTS = 2_500
PAGE = """<!doctype html><html><body><h1>workload</h1>
<script src="/v1/collector.js"></script></body></html>"""
TRACK_ALL = """([events, key]) => {
  window.collectors = {};
  for (const e of events) {
    let c = window.collectors[e.session_id];
    if (!c) {
      c = window.collectors[e.session_id] = GenPulseCollector.init({
        ingestKey: key, service: "uvp-web", sessionId: e.session_id, userId: e.user_id,
        flushAt: 50, flushIntervalMs: 600000});
    }
    c.track(e.type, e.data);
  }
  return Promise.all(Object.values(window.collectors).map((c) => c.flush()));
}"""
SENT = "Object.values(window.collectors).reduce((n, c) => n + c.getStats().sent, 0)"


@pytest.fixture
def stack(
    kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path
) -> Iterator[tuple[ApiProcess, WorkerSettings]]:
    settings = WorkerSettings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=f"vocab-{unique}",
        app_id=f"vocab-{unique}",
        snapshot_interval_s=0.5,
    )
    worker = WorkerProcess(settings, tmp_path, "w1").start()
    api = ApiProcess(
        {
            "GENPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "GENPULSE_REDIS_URL": redis_url,
            "GENPULSE_TOPIC_PREFIX": settings.topic_prefix,
            "GENPULSE_API_READ_TOKENS": READ_TOKEN,
            "GENPULSE_API_INGEST_KEYS": INGEST_KEY,
        },
        tmp_path / "api.log",
    )
    api.start()
    try:
        yield api, settings
    finally:
        api.stop()
        worker.stop()


async def check(api: ApiProcess, settings: WorkerSettings, tracked: int) -> None:
    oracle = Oracle()
    for record in await read_topic(
        settings.kafka_bootstrap, settings.topic("events"), expect=tracked
    ):
        oracle.feed(record.value)
    assert sum(oracle.count.values()) == tracked and oracle.dead == 0
    assert set(oracle.count) >= {t.value for t in SEED_EVENT_TYPES}
    now = time.time_ns() // 1_000_000
    start, end = now - 10 * 60_000, now + 10 * 60_000
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        http = HttpReader(client)
        deadline = time.monotonic() + 180
        while (await http.summary(start, end))["events"] < tracked:
            assert time.monotonic() < deadline, "the worker did not aggregate the browser's events"
            await asyncio.sleep(0.5)
        await assert_matches(http, oracle, start, end)


def test_a_browser_workload_in_the_specifications_names_equals_the_oracle(
    browser: Browser, stack: tuple[ApiProcess, WorkerSettings]
) -> None:
    api, settings = stack
    events: list[dict[str, Any]] = [
        {k: e[k] for k in ("type", "session_id", "user_id", "data")}
        for e in workload(31, EVENTS, 0, 0)
    ]
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route(
        f"{api.url}/workload", lambda route: route.fulfill(body=PAGE, content_type="text/html")
    )
    page.goto(f"{api.url}/workload")
    page.evaluate(TRACK_ALL, [events, INGEST_KEY])
    page.wait_for_function(f"{SENT} === {len(events)}", timeout=120_000)
    refused = page.evaluate(
        "Object.values(window.collectors).reduce((n, c) => n + c.getStats().refused, 0)"
    )
    page.close()
    assert not errors and refused == 0, (errors, refused)
    with ThreadPoolExecutor(max_workers=1) as pool:  # Playwright's sync API owns this loop
        pool.submit(asyncio.run, check(api, settings, len(events))).result()

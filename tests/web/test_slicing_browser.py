"""Acceptance (issue 14, item 2), the dashboard: in real Chromium against Kafka, Redis, a
worker and the API, the filter bar and the group-by switch change the charts to the API's
sliced answers, the URL keeps the view, and opening that URL in a fresh browser (signing in
again: the token is never in the URL) restores the same view."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from streams.settings import WorkerSettings
from tests.api.test_slicing_e2e import SERVICES, dimensions
from tests.streams.helpers import WorkerProcess
from tests.streams.workload import workload
from tests.web.browser import ApiProcess
from tests.web.conftest import INGEST_KEY, READ_TOKEN

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHART_NAMES = "Array.from(document.getElementById('{}').data || []).map((t) => t.name)"


class Api:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}",
            params=params,
            timeout=30,
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def api(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    tmp: Path = tmp_path_factory.mktemp("slicing-web")
    prefix = f"sliceweb-{uuid.uuid4().hex[:10]}"
    settings = WorkerSettings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=prefix,
        app_id=prefix,
        snapshot_interval_s=0.5,
    )
    worker = WorkerProcess(settings, tmp, "w1").start()
    process = ApiProcess(
        {
            "GENPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "GENPULSE_REDIS_URL": redis_url,
            "GENPULSE_TOPIC_PREFIX": prefix,
            "GENPULSE_API_READ_TOKENS": READ_TOKEN,
            "GENPULSE_API_INGEST_KEYS": INGEST_KEY,
        },
        tmp / "api.log",
    )
    process.start()
    try:
        now = time.time_ns() // 1_000_000
        events = dimensions(workload(41, 2_000, now - 10 * 60_000, 9 * 60_000), 41)
        for i in range(0, len(events), 500):
            sent = httpx.post(
                f"{process.url}/v1/collect",
                json=events[i : i + 500],
                timeout=60,
                headers={"Authorization": f"Bearer {INGEST_KEY}"},
            )
            assert sent.status_code == 202 and sent.json()["rejected"] == 0, sent.text
        running = Api(process.url)
        deadline = time.monotonic() + 90
        while running.get("/v1/metrics/summary", window="1h")["events"] < len(events):
            assert time.monotonic() < deadline and worker.alive(), worker.log_tail()
            time.sleep(0.3)
        yield running
    finally:
        process.stop()
        worker.stop()


def signed_in(browser: Browser, url: str) -> Page:
    """A fresh browser context (no sessionStorage) at `url`, signed in."""
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.fill("#token", READ_TOKEN)
    page.click("#signin-form button")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def card_equals(page: Page, expected: int) -> None:
    page.wait_for_function(
        f"document.getElementById('card-total-generations').dataset.value === '{expected}'",
        timeout=30_000,
    )


def test_filter_and_group_by_change_the_charts_and_the_url_restores_them(
    browser: Browser, api: Api
) -> None:
    page = signed_in(browser, f"{api.url}/dashboard")
    total = api.get("/v1/metrics/summary", window="1h")["total_generations"]
    card_equals(page, total)
    page.wait_for_function(f"{CHART_NAMES.format('chart-duration')}.length === 2", timeout=30_000)
    assert page.evaluate(CHART_NAMES.format("chart-duration")) == ["p50", "p95"]

    # the filter boxes offer the values seen in the range
    offered = "Array.from(document.querySelectorAll('#dl-service option')).map((o) => o.value)"
    page.wait_for_function(f"{offered}.length === {len(SERVICES)}", timeout=30_000)
    assert sorted(page.evaluate(offered)) == sorted(SERVICES)
    environments = (
        "Array.from(document.querySelectorAll('#dl-environment option')).map((o) => o.value)"
    )
    assert sorted(page.evaluate(environments)) == ["none", "prod", "staging"]

    # a filter: the cards and charts show that environment only
    page.fill("#f-environment", "prod")
    page.click("#filters button[type=submit]")
    prod = api.get("/v1/metrics/summary", window="1h", environment="prod")["total_generations"]
    assert 0 < prod < total
    card_equals(page, prod)
    assert "environment=prod" in page.url

    # group by service: one line per service in the time series, a table of the groups
    page.select_option("#f-group", "service")
    grouped = api.get("/v1/metrics/summary", window="1h", environment="prod", group_by="service")
    services = [g["value"] for g in grouped["groups"]]
    assert sorted(services) == sorted(SERVICES)
    names = CHART_NAMES.format("chart-duration")
    page.wait_for_function(f"{names}.length === {len(services)}", timeout=30_000)
    assert sorted(page.evaluate(names)) == sorted(services)
    assert sorted(page.evaluate(CHART_NAMES.format("chart-errors"))) == sorted(services)
    page.wait_for_function("document.querySelectorAll('#groups tr').length === 4", timeout=30_000)
    rows = page.locator("#groups tr").all_inner_texts()[1:]
    shown = {row.split("\t")[0]: row.split("\t")[1] for row in rows}
    assert shown == {g["value"]: f"{g['total_generations']:,}" for g in grouped["groups"]}
    assert "group_by=service" in page.url and "environment=prod" in page.url
    shared = page.url
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-sliced.png"))
    assert not page.errors, page.errors  # type: ignore[attr-defined]

    # the shared URL in a fresh browser: the same view after signing in
    other = signed_in(browser, shared)
    card_equals(other, prod)
    other.wait_for_function(f"{names}.length === {len(services)}", timeout=30_000)
    assert sorted(other.evaluate(names)) == sorted(services)
    assert other.input_value("#f-environment") == "prod"
    assert other.input_value("#f-group") == "service"
    assert other.is_visible("#groups-section")
    assert other.locator("#groups tr").count() == 4

    # clearing restores the whole view, and the URL says so
    other.click("#f-clear")
    card_equals(other, total)
    other.wait_for_function(f"{names}.length === 2", timeout=30_000)
    assert "environment" not in other.url and "group_by" not in other.url
    assert not other.errors, other.errors  # type: ignore[attr-defined]
    page.context.close()
    other.context.close()

"""The Datadog HTTP API sinks post the exact v2 series and v1 event JSON to a local server."""

from __future__ import annotations

import time
from collections.abc import Callable

from producers.events import EventType
from streams.sinks import SinkSettings
from tests.sinks.endpoints import HttpRecorder, wait_until
from tests.sinks.harness import produce_events, produce_json, running
from tests.sinks.test_dogstatsd import BUDGET_STATE
from tests.unit.test_contract import NOW_MS, make_event

API_KEY = "dd-test-key-0123456789"


def model_call(model: str, tier: str, cost: int, session: str = "sess-1") -> object:
    data = {
        "model": model,
        "tier": tier,
        "input_tokens": 100,
        "output_tokens": 50,
        "cost_nanousd": cost,
    }
    return make_event(EventType.MODEL_CALLED, session_id=session, data=data)


async def test_v2_series_body_is_exact(
    sink_settings: Callable[..., SinkSettings], http: HttpRecorder
) -> None:
    settings = sink_settings(
        datadog_series_enabled=True, datadog_api_key=API_KEY, datadog_api_url=http.base_url
    )
    began = int(time.time())
    async with running(settings):
        await produce_events(
            settings,
            [
                model_call("claude-sonnet", "sonnet", 6_000_000),
                model_call("claude-sonnet", "sonnet", 3_000_000),
                make_event(EventType.CACHE_MISS, data={}),
                make_event(EventType.PHASE_COMPLETED, data={"phase": "analysis", "duration_ms": 5}),
            ],
        )
        await produce_json(settings, "budget-state", [BUDGET_STATE])

        def everything_posted() -> bool:
            posted = [s for r in http.to("/api/v2/series") for s in r.body["series"]]
            calls = sum(s["points"][0]["value"] for s in posted if s["metric"].endswith(".calls"))
            names = {s["metric"] for s in posted}
            wanted = {"genpulse.cache.lookups", "genpulse.budget.spend"}
            return calls == 2 and wanted <= names

        await wait_until(everything_posted, what="both calls, the cache lookup and the budget")
    posts = http.to("/api/v2/series")
    assert all(p.headers["DD-API-KEY"] == API_KEY for p in posts)
    assert all(p.headers["Content-Type"] == "application/json" for p in posts)
    series = [s for p in posts for s in p.body["series"]]
    stamps = {point["timestamp"] for s in series for point in s["points"]}
    assert all(isinstance(t, int) and began <= t <= time.time() + 1 for t in stamps)
    for s in series:
        for point in s["points"]:
            point["timestamp"] = 0
    model = ["service:uvp-generator", "env:test", "model:claude-sonnet", "tier:sonnet"]
    budget = ["env:test", "scope:model:opus"]

    def count(metric: str, value: float, tags: list[str], unit: str) -> dict[str, object]:
        return {
            "metric": metric,
            "type": 1,
            "points": [{"timestamp": 0, "value": value}],
            "tags": sorted(tags),
            "interval": 1,
            "unit": unit,
        }

    def gauge(metric: str, value: float, tags: list[str], unit: str) -> dict[str, object]:
        point = [{"timestamp": 0, "value": value}]
        return {"metric": metric, "type": 3, "points": point, "tags": sorted(tags), "unit": unit}

    expected = [
        count("genpulse.model.calls", 2.0, model, "request"),
        count("genpulse.model.tokens", 200.0, [*model, "kind:input"], "token"),
        count("genpulse.model.tokens", 100.0, [*model, "kind:output"], "token"),
        count("genpulse.model.cost", 0.009, model, "dollar"),
        count(
            "genpulse.cache.lookups",
            1.0,
            ["service:uvp-generator", "env:test", "result:miss"],
            "request",
        ),
        gauge("genpulse.budget.percent_used", 51.2, budget, "percent"),
        gauge("genpulse.budget.spend", 51.2, budget, "dollar"),
    ]

    def key(s: dict[str, object]) -> str:
        return f"{s['metric']}{s['tags']}"

    # counts are summed per flush; the sum may be split over two flushes, gauges repeat
    got: dict[str, dict[str, object]] = {}
    for s in series:
        if key(s) in got and s["type"] == 1:
            got[key(s)]["points"][0]["value"] += s["points"][0]["value"]  # type: ignore[index]
        else:
            got[key(s)] = s
    for want in expected:
        have = got[key(want)]
        if want["type"] == 1:
            have["points"][0]["value"] = round(have["points"][0]["value"], 9)  # type: ignore[index]
        assert have == want
    assert set(got) == {key(w) for w in expected}  # distributions are DogStatsD-only


async def test_one_datadog_event_per_completed_generation(
    sink_settings: Callable[..., SinkSettings], http: HttpRecorder
) -> None:
    settings = sink_settings(
        datadog_events_enabled=True, datadog_api_key=API_KEY, datadog_api_url=http.base_url
    )
    async with running(settings):
        await produce_events(
            settings,
            [
                make_event(EventType.GENERATION_STARTED, session_id="gen-a", data={}),
                model_call("claude-sonnet", "sonnet", 6_000_000, session="gen-a"),
                model_call("claude-haiku", "haiku", 1_200_000, session="gen-a"),
                make_event(
                    EventType.GENERATION_COMPLETED, session_id="gen-a", data={"duration_ms": 4200}
                ),
                make_event(EventType.QUALITY_SCORED, session_id="gen-a", data={"score": 87}),
                # a second generation whose score never comes: sent after the wait, quality n/a
                make_event(EventType.GENERATION_STARTED, session_id="gen-b", data={}),
                make_event(EventType.GENERATION_COMPLETED, session_id="gen-b", data={}),
            ],
        )
        await wait_until(lambda: len(http.to("/api/v1/events")) >= 2, what="2 events")
    first, second = (r.body for r in http.to("/api/v1/events"))
    assert http.to("/api/v1/events")[0].headers["DD-API-KEY"] == API_KEY
    assert first == {
        "title": "Generation completed (uvp-generator)",
        "text": "session: gen-a\ncost: $0.0072 over 2 model calls\nquality: 87\nduration: 4200 ms",
        "date_happened": NOW_MS // 1000,
        "alert_type": "info",
        "priority": "low",
        "aggregation_key": "gen-a",
        "tags": [
            "service:uvp-generator",
            "env:test",
            "model:claude-haiku",
            "model:claude-sonnet",
        ],
    }
    assert second["text"] == "session: gen-b\ncost: $0 over 0 model calls\nquality: n/a\n" + (
        "duration: n/a"
    )

"""Bad input never raises: counted per kind, warned once per kind; good data still flows."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from producers.settings import GenPulseSettings
from tests.producers.conftest import ClientFactory
from tests.producers.kafka_read import read_topic


def test_bad_calls_are_counted_warned_once_and_never_raise(
    make_client: ClientFactory, settings: GenPulseSettings, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    caplog.set_level(logging.WARNING, logger="genpulse.sdk")
    for _ in range(3):  # three of each: still one warning per kind
        assert client.costs.record_model_call("mystery-model", 10, 20, session_id="s") is None
        assert client.costs.record_model_call("claude-3-haiku", -1, 20) is None
        assert client.costs.record_model_call("claude-3-haiku", 1.5, 20) is None  # type: ignore[arg-type]
        assert client.costs.record_model_call("haiku", 1, 2, cache_write_1h_tokens=-3) is None
        assert client.costs.record_model_call("haiku", 1, 2, timestamp_ms=1.7e12) is None  # type: ignore[arg-type]
        client.performance.record_phase_time("analysis", math.nan)
        client.performance.record_phase_time("analysis", -5.0)
        client.events.track("not_a_type", {"x": 1})
        client.events.track("cache_hit", {"when": object()}, session_id="s")
        assert client.performance.end_timer(987654) is None
    client.events.track("cache_hit", {"ok": True}, session_id="s")  # good input still flows
    assert client.flush(timeout=30)

    invalid = client.stats().invalid
    assert invalid == {
        "unknown_model": 3,
        "invalid_tokens": 9,
        "invalid_timestamp": 3,
        "invalid_duration": 6,
        "unknown_event_type": 3,
        "unserialisable_data": 3,
        "unknown_timer": 3,
    }
    warnings = [
        r for r in caplog.records if r.name == "genpulse.sdk" and "warned once" in r.message
    ]
    assert sorted(
        kind for kind in invalid if any(kind in r.getMessage() for r in warnings)
    ) == sorted(invalid)
    assert len(warnings) == len(invalid)

    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=4)
    kinds = sorted((r.value["type"], r.value["data"].get("priced")) for r in received)  # type: ignore[union-attr]
    # the unknown model's calls are still reported, marked unpriced
    assert kinds == [("cache_hit", None)] + [("model_called", False)] * 3


def test_unknown_model_shows_in_local_costs(make_client: ClientFactory) -> None:
    client = make_client()
    client.costs.record_model_call("claude-3-5-sonnet-latest", 1000, 1000, user_id="ann")
    client.costs.record_model_call("mystery-model", 1000, 1000, user_id="ann")
    client.costs.record_model_call("claude-haiku-9-9", 1000, 1000, user_id="ann")
    costs = client.costs.get_costs()
    assert costs["calls"] == 3 and costs["unpriced_calls"] == 2
    assert costs["total_cost_nanousd"] == 1000 * 3000 + 1000 * 15000
    assert costs["total_cost_usd"] == "0.018000000"
    assert costs["by_model"]["mystery-model"]["tier"] is None
    # an unknown model of a known family keeps its tier for dashboards, still unpriced
    assert costs["by_model"]["claude-haiku-9-9"]["tier"] == "haiku"
    assert costs["by_model"]["claude-haiku-9-9"]["unpriced_calls"] == 1
    assert costs["by_user"]["ann"]["calls"] == 3


def test_configuration_mistakes_raise_at_once(make_client: ClientFactory, tmp_path: Path) -> None:
    overlay = tmp_path / "prices.json"
    overlay.write_text(
        '{"models": {"haiku": {"prices": [{"effective": "2026-01-01", "input": -1}]}}}'
    )
    with pytest.raises(ValueError, match=r"prices.json: models.haiku.prices.0.input"):
        make_client(price_overlay=str(overlay))
    with pytest.raises(ValueError, match=r"GENPULSE_PRICES is no longer read.*PRICE_OVERLAY"):
        make_client(prices={"haiku": {"input": "0.80", "output": "4"}})
    client = make_client()
    with pytest.raises(ValueError, match="scope"):
        client.costs.set_daily_budget(10, scope="team-a")
    with pytest.raises(ValueError, match="more than 0"):
        client.costs.set_daily_budget(0)
    with pytest.raises(ValueError, match="ascending"):
        client.costs.set_daily_budget(10, thresholds=[0.9, 0.5, 0.8, 1.0])

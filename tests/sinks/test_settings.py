"""The sinks' settings: off by default, secrets never shown, a missing key said clearly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.sinks import SinkSettings


def test_everything_is_off_by_default() -> None:
    settings = SinkSettings()
    assert not settings.any_enabled


def test_secrets_stay_out_of_reprs_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENPULSE_WEBHOOK_SLACK_URLS", "https://h/T/B/tok-1, https://h/T/B/tok-2")
    monkeypatch.setenv("GENPULSE_GA4_MEASUREMENT_ID", "G-1")
    monkeypatch.setenv("GENPULSE_GA4_API_SECRET", "ga-secret")
    monkeypatch.setenv("GENPULSE_DATADOG_API_KEY", "dd-secret")
    settings = SinkSettings()
    assert [u.get_secret_value() for u in settings.webhook_slack_urls] == [
        "https://h/T/B/tok-1",
        "https://h/T/B/tok-2",
    ]
    assert settings.ga4_enabled and settings.webhooks_enabled
    for secret in ("tok-1", "ga-secret", "dd-secret"):
        assert secret not in repr(settings)


def test_datadog_http_needs_a_key() -> None:
    with pytest.raises(ValidationError, match="GENPULSE_DATADOG_API_KEY"):
        SinkSettings(datadog_events_enabled=True)


def test_ga4_needs_both_id_and_secret() -> None:
    assert not SinkSettings(ga4_measurement_id="G-1").ga4_enabled

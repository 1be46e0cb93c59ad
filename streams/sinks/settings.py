"""The sinks' settings: which exporters are on, where they send, and how hard they retry.

Every sink is off until its own switch (or URL) is set. Secrets are `SecretStr`, so they
never show in a repr, a log line or a validation error. docs/configuration.md lists them all.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from producers.settings import GenPulseSettings

GA4_DEFAULT_EVENT_TYPES: tuple[str, ...] = (
    "generation_started",
    "generation_completed",
    "generation_failed",
    "generation_canceled",
    "uvp_approved",
    "uvp_edited",
    "uvp_regenerated",
    "model_upgraded",
    "content_copied",
    "content_exported",
    "satisfaction_rated",
    "nps_rated",
)
"""Generation lifecycle and user actions: what GA4 is for (not model calls or health)."""

StrList = Annotated[tuple[str, ...], NoDecode]
SecretList = Annotated[tuple[SecretStr, ...], NoDecode]  # webhook URLs carry their token


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class SinkSettings(GenPulseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GENPULSE_", extra="ignore", hide_input_in_errors=True
    )

    # -- Datadog: DogStatsD ---------------------------------------------------------
    dogstatsd_enabled: bool = Field(False, description="Send metrics to a DogStatsD agent.")
    dogstatsd_host: str = Field("127.0.0.1", description="DogStatsD UDP host.")
    dogstatsd_port: int = Field(8125, ge=1, le=65535, description="DogStatsD UDP port.")
    dogstatsd_socket: str = Field(
        "", description="Unix socket path of the agent; when set, used instead of host:port."
    )
    # -- Datadog: HTTP API (v2 series, v1 events) -------------------------------------
    datadog_api_key: SecretStr = Field(SecretStr(""), description="DD-API-KEY for the HTTP API.")
    datadog_api_url: str = Field(
        "https://api.datadoghq.com", description="Base URL of the Datadog HTTP API (your site)."
    )
    datadog_series_enabled: bool = Field(False, description="POST metrics to /api/v2/series.")
    datadog_events_enabled: bool = Field(
        False, description="POST one event per completed generation to /api/v1/events."
    )
    datadog_flush_s: float = Field(10.0, gt=0, description="Seconds between v2 series posts.")
    datadog_quality_wait_s: float = Field(
        5.0, ge=0, description="How long a completed generation waits for its quality score."
    )
    metric_namespace: str = Field("genpulse", description="Prefix of every Datadog metric name.")
    # -- GA4 Measurement Protocol -----------------------------------------------------
    ga4_measurement_id: str = Field("", description="GA4 measurement id (G-XXXXXXX).")
    ga4_api_secret: SecretStr = Field(SecretStr(""), description="GA4 Measurement Protocol secret.")
    ga4_endpoint: str = Field(
        "https://www.google-analytics.com", description="Base URL; /mp/collect is appended."
    )
    ga4_event_types: StrList = Field(
        GA4_DEFAULT_EVENT_TYPES, description="Event types forwarded to GA4 (comma-separated)."
    )
    ga4_event_names: dict[str, str] = Field(
        default_factory=dict,
        description='GA4 name per event type, JSON, e.g. {"uvp_approved": "approve_content"}.',
    )
    # -- alert webhooks ---------------------------------------------------------------
    webhook_slack_urls: SecretList = Field(
        (), description="Webhook URLs that get alerts as Slack messages (comma-separated)."
    )
    webhook_plain_urls: SecretList = Field(
        (), description="Webhook URLs that get the alert record itself (comma-separated)."
    )
    webhook_dedup_size: int = Field(
        10_000, gt=0, description="Delivered alert ids remembered (in Redis) per webhook."
    )
    # -- delivery, for every sink -----------------------------------------------------
    sinks_queue_size: int = Field(10_000, gt=0, description="Items each sink may hold.")
    sinks_max_attempts: int = Field(
        5, ge=1, description="Tries per batch before it counts as failed."
    )
    sinks_backoff_s: float = Field(0.5, gt=0, description="First retry delay (doubles, jittered).")
    sinks_backoff_max_s: float = Field(30.0, gt=0, description="Longest retry delay.")
    sinks_http_timeout_s: float = Field(5.0, gt=0, description="Timeout of one HTTP request.")
    sinks_health_s: float = Field(2.0, gt=0, description="Seconds between health hash writes.")
    sinks_drain_s: float = Field(
        5.0, ge=0, description="At a stop, how long queued items may still be sent."
    )
    sinks_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness of `genpulse sinks`: on a shared host the worker's "
        "aggregation wins the CPU and the exporters catch up when it is idle.",
    )
    sinks_cpu_idle: bool = Field(
        True,
        description="Run `genpulse sinks` under Linux's SCHED_IDLE policy: it gets CPU time "
        "only when no other process wants it, so it never slows the worker (it lags in a "
        "burst and catches up after). Off: niceness alone (GENPULSE_SINKS_NICE).",
    )
    sinks_start: str = Field(
        "latest",
        pattern="^(latest|earliest)$",
        description="Where a new consumer group starts: 'latest' (no backlog) or 'earliest'.",
    )
    sinks_aggregates: bool = Field(
        True, description="Also send the worker's aggregates (percentiles, rates) as gauges."
    )
    sinks_poll_s: float = Field(
        15.0, gt=0, description="Seconds between reads of the worker's aggregates."
    )
    sinks_window_s: int = Field(
        300, gt=0, description="Window of the aggregate gauges (percentiles, rates), seconds."
    )
    # -- shared with the worker (same variables, same meaning) --------------------------
    redis_prefix: str = Field("", description="Redis key prefix; empty means the topic prefix.")
    cost_timezone: str = Field("UTC", description="Time zone of the cost day.")

    @field_validator("ga4_event_types", "webhook_slack_urls", "webhook_plain_urls", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split(value)

    @model_validator(mode="after")
    def _keys_present(self) -> SinkSettings:
        wants_api = self.datadog_series_enabled or self.datadog_events_enabled
        if wants_api and not self.datadog_api_key.get_secret_value():
            raise ValueError(
                "GENPULSE_DATADOG_SERIES_ENABLED / GENPULSE_DATADOG_EVENTS_ENABLED need "
                "GENPULSE_DATADOG_API_KEY"
            )
        return self

    @property
    def key_prefix(self) -> str:
        """Prefix of the Redis keys (the worker's snapshots, the sinks' health and ids)."""
        return self.redis_prefix or self.topic_prefix

    @property
    def ga4_enabled(self) -> bool:
        return bool(self.ga4_measurement_id and self.ga4_api_secret.get_secret_value())

    @property
    def webhooks_enabled(self) -> bool:
        return bool(self.webhook_slack_urls or self.webhook_plain_urls)

    @property
    def any_enabled(self) -> bool:
        return (
            self.dogstatsd_enabled
            or self.datadog_series_enabled
            or self.datadog_events_enabled
            or self.ga4_enabled
            or self.webhooks_enabled
        )

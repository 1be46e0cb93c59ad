"""The SDK client's settings: the shared `GENPULSE_*` ones plus batching and limits.

docs/configuration.md lists every variable; keep it in step with this file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from producers.dimensions import environment_problem, tags_problem
from producers.settings import GenPulseSettings

Compression = Literal["lz4", "zstd", "snappy", "gzip", "none"]


class SdkSettings(GenPulseSettings):
    flush_at: int = Field(default=50, ge=1, description="Send when this many events are buffered.")
    flush_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="Send buffered events and a metric batch at least this often.",
    )
    max_buffer_events: int = Field(
        default=100_000,
        ge=2,
        description="Most events held while Kafka is slow or down; then oldest drop.",
    )
    max_buffer_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Most (estimated) bytes held; then oldest drop.",
    )
    retry_initial_backoff_s: float = Field(default=0.1, gt=0, description="First retry delay.")
    retry_max_backoff_s: float = Field(default=10.0, gt=0, description="Longest retry delay.")
    shutdown_timeout_s: float = Field(
        default=10.0, ge=0, description="How long close() and interpreter exit wait for delivery."
    )
    compression: Compression = Field(default="lz4", description="Kafka batch compression.")
    local_view_size: int = Field(
        default=1000, ge=0, description="Recent events kept for get_events() (debugging view)."
    )
    prices: object = Field(
        default=None, description="Removed: set price_overlay instead (docs/pricing.md)."
    )
    model_tiers: object = Field(
        default=None, description="Removed: an overlay model's `tier` (docs/pricing.md)."
    )
    cost_timezone: str = Field(
        default="UTC",
        description="IANA time zone of the cost and budget day (as the worker's setting).",
    )
    environment: str | None = Field(
        default=None, description="Environment every event of this client carries, e.g. prod."
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description='Tags every event of this client carries, e.g. {"team": "growth"} '
        "(at most 10; keys [a-z0-9_.-] up to 40 chars, values up to 100).",
    )
    follow_budget_state: bool = Field(
        default=True, description="Read the budget-state topic so budget.allows() answers locally."
    )

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str | None) -> str | None:
        problem = None if value is None else environment_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        problem = tags_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("prices", "model_tiers")
    @classmethod
    def _removed(cls, value: object, info: ValidationInfo) -> None:
        """A removed price setting fails loudly rather than being silently ignored."""
        if value is not None:
            raise ValueError(
                f"GENPULSE_{str(info.field_name).upper()} is no longer read: model prices come "
                "from genai-prices; put your own in a file named by GENPULSE_PRICE_OVERLAY "
                "(docs/pricing.md)"
            )
        return None

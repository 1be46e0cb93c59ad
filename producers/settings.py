"""Settings shared by every genpulse component, read from `GENPULSE_*` environment variables.

docs/configuration.md is the one table of every variable; keep it in step with this file.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TOPIC_NAMES: tuple[str, ...] = ("events", "metrics", "control", "alerts", "budget-state", "dlq")


class GenPulseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENPULSE_", extra="ignore")

    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis for snapshots.")
    topic_prefix: str = Field(
        default="genpulse", description="Topics are '<prefix>.events', '<prefix>.metrics', …"
    )
    service: str = Field(default="unknown-service", description="Name of the reporting service.")
    env: str = Field(default="dev", description="Deployment environment tag.")
    max_event_bytes: int = Field(default=64 * 1024, description="Largest accepted encoded event.")
    price_overlay: str | None = Field(
        default=None,
        description="JSON or TOML file of the operator's own model prices (docs/pricing.md).",
    )

    def topic(self, name: str) -> str:
        """Full topic name for one of TOPIC_NAMES."""
        if name not in TOPIC_NAMES:
            raise ValueError(f"unknown topic {name!r}; expected one of {TOPIC_NAMES}")
        return f"{self.topic_prefix}.{name}"

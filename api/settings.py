"""The API's settings: the shared `GENPULSE_*` ones plus who may call it and how much it takes.

List-valued settings (tokens, CORS origins) are comma-separated in the environment, e.g.
`GENPULSE_API_READ_TOKENS=tok-a,tok-b`. docs/configuration.md is the table of all of them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from api.sinks_health import STALE_INTERVALS
from producers.settings import GenPulseSettings

MIN_TOKEN_CHARS = 16

TokenList = Annotated[tuple[SecretStr, ...], NoDecode]


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class ApiSettings(GenPulseSettings):
    # validation errors must not echo secrets (tokens arrive through these fields)
    model_config = SettingsConfigDict(
        env_prefix="GENPULSE_", extra="ignore", hide_input_in_errors=True
    )

    api_host: str = Field("127.0.0.1", description="Address `genpulse api` listens on.")
    api_port: int = Field(8000, ge=0, le=65535, description="Port `genpulse api` listens on.")
    api_read_tokens: TokenList = Field((), description="Bearer tokens with the read role.")
    api_admin_tokens: TokenList = Field(
        (), description="Bearer tokens with the admin role (admin may also read)."
    )
    api_ingest_keys: TokenList = Field(
        (), description="Keys allowed to POST /v1/collect (header or `key` query parameter)."
    )
    api_cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Browser origins allowed to call the API (exact match, e.g. https://app)."
    )
    api_max_body_bytes: int = Field(1024 * 1024, gt=0, description="Largest /v1/collect body.")
    api_max_batch_events: int = Field(500, gt=0, description="Most events per /v1/collect body.")
    api_otlp_max_body_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="Largest OTLP body as received (compressed or not)."
    )
    api_otlp_max_decoded_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="Largest OTLP body after gunzip (OTLP's 20 MiB)."
    )
    api_kafka_timeout_s: float = Field(
        5.0, gt=0, description="How long a Kafka write may take before the API answers 503."
    )
    api_redis_timeout_s: float = Field(
        2.0, gt=0, description="Socket timeout of Redis reads; slower reads answer 503."
    )
    api_sse_heartbeat_s: float = Field(15.0, gt=0, description="Idle time between SSE pings.")
    api_transactional_id: str = Field(
        "", description="Kafka transactional id of this replica; empty = derived from host/pid."
    )

    # shared with the worker (same variables), so both name the same keys and targets
    redis_prefix: str = Field("", description="Redis key prefix; empty means the topic prefix.")
    target_ttfb_ms: float = Field(500.0, description="Time-to-first-byte target.")
    target_fcp_ms: float = Field(2000.0, description="Time-to-first-content target.")
    target_tti_ms: float = Field(7000.0, description="Time-to-interactive target.")
    target_complete_ms: float = Field(15000.0, description="Time-to-complete target.")
    sinks_health_s: float = Field(
        2.0, gt=0, description="The sinks' health write interval; 3 missed writes = stale."
    )

    @property
    def key_prefix(self) -> str:
        return self.redis_prefix or self.topic_prefix

    @property
    def sinks_stale_after_ms(self) -> int:
        return int(STALE_INTERVALS * self.sinks_health_s * 1000)

    @field_validator("api_read_tokens", "api_admin_tokens", "api_ingest_keys", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("api_read_tokens", "api_admin_tokens", "api_ingest_keys", mode="after")
    @classmethod
    def _long_enough(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        # checked after wrapping in SecretStr so that the error never echoes a token
        if any(len(token.get_secret_value()) < MIN_TOKEN_CHARS for token in value):
            raise ValueError(f"every token needs at least {MIN_TOKEN_CHARS} characters")
        return value

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return _split_list(value)

"""Fixtures for the API: settings with known tokens, the app with its lifespan, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.settings import ApiSettings
from producers.settings import GenPulseSettings

READ_TOKEN = "read-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
INGEST_KEY = "ingest-key-0123456789abcdef"
ALLOWED_ORIGIN = "https://app.example"

IDENTITIES: dict[str, dict[str, str]] = {
    "none": {},
    "wrong": {"Authorization": "Bearer not-a-configured-token-at-all"},
    "read": {"Authorization": f"Bearer {READ_TOKEN}"},
    "ingest": {"Authorization": f"Bearer {INGEST_KEY}"},
    "admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
}


def auth(identity: str) -> dict[str, str]:
    return dict(IDENTITIES[identity])


@pytest.fixture
def api_settings(settings: GenPulseSettings, redis_url: str) -> ApiSettings:
    return ApiSettings(
        kafka_bootstrap=settings.kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=settings.topic_prefix,
        api_read_tokens=[READ_TOKEN],
        api_admin_tokens=[ADMIN_TOKEN],
        api_ingest_keys=[INGEST_KEY],
        api_cors_origins=[ALLOWED_ORIGIN],
        api_sse_heartbeat_s=0.5,
        api_kafka_timeout_s=10,
    )


@pytest.fixture
async def app(api_settings: ApiSettings) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http

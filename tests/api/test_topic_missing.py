"""The API never creates a topic: /v1/collect answers 503 topic_missing at once instead."""

from __future__ import annotations

import time

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.conftest import auth
from tests.api.test_collect import event
from tests.services import create_topology


async def test_collect_answers_503_until_the_topics_exist(
    api_settings: ApiSettings, unique: str
) -> None:
    prefix = f"nothing-{unique}"
    settings = api_settings.model_copy(update={"topic_prefix": prefix})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            began = time.monotonic()
            refused = await client.post("/v1/collect", json=[event()], headers=auth("ingest"))
            took = time.monotonic() - began
            assert refused.status_code == 503, refused.text
            body = refused.json()
            assert body["error"] == "topic_missing"
            assert (
                f"topic {prefix}." in body["message"]
                and "genpulse topics create" in body["message"]
            )
            assert took < settings.api_kafka_timeout_s, "answered at once, not after a timeout"
            assert refused.headers["Retry-After"] == "5"

            admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
            await admin.start()
            try:
                assert not [t for t in await admin.list_topics() if t.startswith(prefix)]
            finally:
                await admin.close()

            create_topology(settings.kafka_bootstrap, prefix)
            accepted = await client.post("/v1/collect", json=[event()], headers=auth("ingest"))
            assert accepted.status_code == 202, accepted.text

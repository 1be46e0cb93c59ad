"""Kafka down: /v1/collect and control writes answer 503 and write nothing; then recover."""

from __future__ import annotations

import re
import time

import httpx
import orjson

from api.app import create_app
from api.settings import ApiSettings
from genpulse.devservices import KafkaServer, start_kafka
from tests.api.conftest import auth
from tests.api.kafka_read import read_topic
from tests.api.test_collect import event
from tests.services import create_topology


def restart(server: KafkaServer) -> KafkaServer:
    props = (server.data_dir / "server.properties").read_text()
    controller = int(re.search(r"CONTROLLER://127\.0\.0\.1:(\d+)", props)[1])  # type: ignore[index]
    return start_kafka(server.data_dir, port=server.port, controller_port=controller)


async def test_collect_is_all_or_nothing_across_a_broker_outage(
    private_kafka: KafkaServer, api_settings: ApiSettings
) -> None:
    settings = api_settings.model_copy(
        update={"kafka_bootstrap": private_kafka.bootstrap, "api_kafka_timeout_s": 3.0}
    )
    create_topology(private_kafka.bootstrap, settings.topic_prefix)
    app = create_app(settings)
    before = [event(f"s-{i}") for i in range(5)]
    during = [event(f"s-{i}") for i in range(5)]
    after = [event(f"s-{i}") for i in range(5)]
    server = private_kafka
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            first = await client.post("/v1/collect", json=before, headers=auth("ingest"))
            assert first.status_code == 202, first.text

            server.stop()
            refused = await client.post("/v1/collect", json=during, headers=auth("ingest"))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "kafka_unavailable"
            budget = await client.put(
                "/v1/budgets/global", json={"daily_budget_usd": "5"}, headers=auth("admin")
            )
            assert budget.status_code == 503
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["kafka"] != "ok"

            server = restart(server)
            try:
                deadline = time.monotonic() + 60
                while True:
                    again = await client.post("/v1/collect", json=after, headers=auth("ingest"))
                    if again.status_code == 202 or time.monotonic() > deadline:
                        break
                assert again.status_code == 202, again.text
                assert (await client.get("/readyz")).status_code == 200
            finally:
                records = await read_topic(server.bootstrap, settings.topic("events"), 10)
                server.stop()
    ids = [orjson.loads(r.value)["event_id"] for r in records]
    assert sorted(ids) == sorted(e["event_id"] for e in before + after)

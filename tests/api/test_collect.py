"""POST /v1/collect against real Kafka: what lands where, and every refusal's status."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest

from api.settings import ApiSettings
from producers.contract import new_event_id
from tests.api.conftest import ALLOWED_ORIGIN, INGEST_KEY, auth
from tests.api.kafka_read import read_topic


def event(session: str = "s-1", kind: str = "uvp_approved", **data: object) -> dict[str, object]:
    return {
        "type": kind,
        "event_id": new_event_id(),
        "timestamp": 1_764_130_000_000,
        "session_id": session,
        "user_id": "alice",
        "service": "web",
        "data": dict(data),
    }


async def test_valid_events_reach_kafka_keyed_by_session_and_invalid_ones_the_dlq(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    good = [event(f"s-{i % 3}") for i in range(6)]
    bad = {
        "type": "phase_completed",
        "event_id": "x",
        "timestamp": 1_764_130_000_000,
        "session_id": "s-9",
        "service": "web",
        "data": {"phase": "lunch"},
    }
    response = await client.post(
        "/v1/collect", json={"events": [*good, bad]}, headers=auth("ingest")
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (6, 1)
    assert body["errors"] == [
        {"index": 6, "reason": "invalid_field", "message": body["errors"][0]["message"]}
    ]
    assert "data.phase" in body["errors"][0]["message"]

    records = await read_topic(api_settings.kafka_bootstrap, api_settings.topic("events"), 6)
    assert sorted(orjson.loads(r.value)["event_id"] for r in records) == sorted(
        e["event_id"] for e in good
    )
    assert all(r.key == orjson.loads(r.value)["session_id"].encode() for r in records)
    dead = await read_topic(api_settings.kafka_bootstrap, api_settings.topic("dlq"), 1)
    letter = orjson.loads(dead[0].value)
    assert letter["reason"] == "invalid_field" and dead[0].key == b"s-9"
    assert orjson.loads(base64.b64decode(letter["raw"])) == bad


async def test_sendbeacon_text_plain_body_with_key_in_query(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    batch = [event("beacon")]
    response = await client.post(
        f"/v1/collect?key={INGEST_KEY}",
        content=orjson.dumps(batch),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": ALLOWED_ORIGIN},
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    records = await read_topic(api_settings.kafka_bootstrap, api_settings.topic("events"), 1)
    assert orjson.loads(records[0].value)["event_id"] == batch[0]["event_id"]


async def test_key_header_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/collect", json=[event()], headers={"X-GenPulse-Key": INGEST_KEY}
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'"a string"', "application/json", 400, "invalid_body"),
        (b'{"events": 3}', "text/plain", 400, "invalid_body"),
        (b"[1, 2]", "application/xml", 415, "unsupported_media_type"),
        (orjson.dumps([{}] * 501), "application/json", 413, "too_many_events"),
        (b"[" + b" " * (1024 * 1024) + b"]", "application/json", 413, "body_too_large"),
    ],
)
async def test_bad_bodies_get_clear_json_errors(
    client: httpx.AsyncClient, body: bytes, content_type: str, status: int, error: str
) -> None:
    headers = {**auth("ingest"), "Content-Type": content_type}
    response = await client.post("/v1/collect", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["message"]


async def test_every_kind_of_bad_event_is_a_rejection_not_an_error(
    client: httpx.AsyncClient,
) -> None:
    batch = [
        "not an object",
        {"type": "no_such_type"},
        {**event(), "timestamp": 1_764_130_000},
        {**event(), "v": 2},
        {**event(), "surprise": 1},
        {**event(kind="quality_scored"), "data": {"score": 101}},
        {**event(), "data": {"blob": "x" * 70_000}},
        event(),
    ]
    response = await client.post("/v1/collect", json=batch, headers=auth("ingest"))
    assert response.status_code == 202, response.text
    reasons = [e["reason"] for e in response.json()["errors"]]
    assert reasons == [
        "not_object",
        "unknown_type",
        "timestamp_unit",
        "unsupported_version",
        "invalid_field",
        "invalid_field",
        "too_large",
    ]
    assert response.json()["accepted"] == 1


async def test_an_origin_outside_the_allow_list_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/collect", json=[event()], headers={**auth("ingest"), "Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "origin_not_allowed"


async def test_the_apis_own_pages_may_ingest_without_listing_their_origin(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/collect", json=[event()], headers={**auth("ingest"), "Origin": "http://api"}
    )
    assert response.status_code == 202, response.text


async def test_cors_preflight_answers_only_allowed_origins(client: httpx.AsyncClient) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    ok = await client.options("/v1/collect", headers={"Origin": ALLOWED_ORIGIN, **asked})
    assert ok.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    evil = await client.options("/v1/collect", headers={"Origin": "https://evil.example", **asked})
    assert "access-control-allow-origin" not in evil.headers

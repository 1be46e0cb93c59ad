"""POST /v1/otlp/v1/{traces,metrics} against real Kafka: what lands where, every refusal.

Bodies are built by hand (protobuf and OTLP/JSON); tests/api/test_otlp_sdk.py sends them
with the real OpenTelemetry SDK and exporters instead.
"""

from __future__ import annotations

import gzip
import os

import httpx
import orjson
import pytest
from fastapi import FastAPI
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from api.settings import ApiSettings
from tests.api.conftest import INGEST_KEY, auth
from tests.api.kafka_read import read_topic
from tests.api.otlp_spans import chat, export, json_export, json_span, span

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
TRACES = "/v1/otlp/v1/traces"


def answer_of(response: httpx.Response) -> ExportTraceServiceResponse:
    assert response.status_code == 200, response.content
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    return answer


def status_of(response: httpx.Response) -> tuple[str, str]:
    """(ErrorInfo reason, message) of a google.rpc.Status answer in either encoding."""
    status = status_pb2.Status()
    if response.headers["content-type"] == "application/x-protobuf":
        status.ParseFromString(response.content)
    else:
        from google.protobuf import json_format

        json_format.Parse(response.content, status)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info.reason, status.message


async def events_on_kafka(api_settings: ApiSettings, expect: int) -> list[dict[str, object]]:
    records = await read_topic(api_settings.kafka_bootstrap, api_settings.topic("events"), expect)
    return [orjson.loads(r.value) for r in records]


async def test_protobuf_export_becomes_model_calls_keyed_by_session_and_the_rest_is_counted(
    client: httpx.AsyncClient, app: FastAPI, api_settings: ApiSettings
) -> None:
    calls = [span(chat(**{"session.id": f"s-{i}", "user.id": "alice"})) for i in range(3)]
    plain = [span({"http.request.method": "GET"}, name="GET /"), span({}, name="db")]
    body = export(*calls, *plain).SerializeToString()
    response = await client.post(TRACES, content=body, headers={**auth("ingest"), **PROTOBUF})
    answer = answer_of(response)
    assert answer.partial_success.rejected_spans == 0
    assert "2 spans without GenAI attributes" in answer.partial_success.error_message

    events = await events_on_kafka(api_settings, 3)
    assert sorted(e["session_id"] for e in events) == ["s-0", "s-1", "s-2"]
    assert {e["type"] for e in events} == {"model_called"}
    assert {e["event_id"] for e in events} == {
        f"otel-{s.trace_id.hex()}-{s.span_id.hex()}-mc" for s in calls
    }
    counted = app.state.api_metrics.otlp_spans
    assert counted.labels("accepted")._value.get() == 3
    assert counted.labels("not_genai")._value.get() == 2


async def test_otlp_json_gets_a_json_answer_and_the_same_events(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    trace_hex, span_hex = os.urandom(16).hex().upper(), os.urandom(8).hex()
    document = json_export(json_span(trace_hex, span_hex, chat(), error=True))
    response = await client.post(
        TRACES, content=orjson.dumps(document), headers={**auth("ingest"), **JSON}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}  # full success: partial_success left unset
    events = await events_on_kafka(api_settings, 2)
    assert sorted(e["type"] for e in events) == ["error_occurred", "model_called"]
    assert all(e["session_id"] == trace_hex.lower() for e in events)


async def test_gzip_bodies_in_both_encodings(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    packed = gzip.compress(export(span(chat()), span(chat())).SerializeToString())
    headers = {**auth("ingest"), **PROTOBUF, "Content-Encoding": "gzip"}
    assert answer_of(await client.post(TRACES, content=packed, headers=headers))
    document = json_export(json_span(os.urandom(16).hex(), os.urandom(8).hex(), chat()))
    headers = {**auth("ingest"), **JSON, "Content-Encoding": "gzip"}
    response = await client.post(
        TRACES, content=gzip.compress(orjson.dumps(document)), headers=headers
    )
    assert response.status_code == 200, response.text
    assert len(await events_on_kafka(api_settings, 3)) == 3


async def test_bad_bodies_get_clear_4xx_and_no_good_span_is_lost(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    key = auth("ingest")
    over_20_mib = b"\n" + b"\xff" * (20 * 1024 * 1024 + 1024)
    bad = [
        (b"this is not protobuf", PROTOBUF, 400, "invalid_protobuf", "application/x-protobuf"),
        (b"{", JSON, 400, "invalid_json", "application/json"),
        (b"<xml/>", {"Content-Type": "application/xml"}, 415, "unsupported_media_type", None),
        (over_20_mib, PROTOBUF, 413, "body_too_large", "application/x-protobuf"),
        (
            b"abc",
            {**PROTOBUF, "Content-Encoding": "gzip"},
            400,
            "invalid_gzip",
            "application/x-protobuf",
        ),
        (
            b"abc",
            {**PROTOBUF, "Content-Encoding": "br"},
            415,
            "unsupported_content_encoding",
            "application/x-protobuf",
        ),
    ]
    good = [span(chat(**{"session.id": f"good-{i}"})) for i in range(4)]
    for i, (body, headers, status, reason, content_type) in enumerate(bad):
        response = await client.post(TRACES, content=body, headers={**key, **headers})
        assert response.status_code == status, (reason, response.content[:200])
        assert response.headers["content-type"] == (content_type or "application/json")
        got_reason, message = status_of(response)
        assert got_reason == reason and message
        if i < len(good):  # a good export between the bad ones
            ok = await client.post(
                TRACES, content=export(good[i]).SerializeToString(), headers={**key, **PROTOBUF}
            )
            assert answer_of(ok).partial_success.rejected_spans == 0
    events = await events_on_kafka(api_settings, len(good))
    assert sorted(e["session_id"] for e in events) == [f"good-{i}" for i in range(4)]


async def test_a_span_that_cannot_be_used_is_a_partial_success_and_a_dead_letter(
    client: httpx.AsyncClient, api_settings: ApiSettings
) -> None:
    broken = span({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 5})
    body = export(span(chat()), broken, span(chat())).SerializeToString()
    response = await client.post(TRACES, content=body, headers={**auth("ingest"), **PROTOBUF})
    partial = answer_of(response).partial_success
    assert partial.rejected_spans == 1
    assert (
        "missing_model" in partial.error_message and broken.span_id.hex() in partial.error_message
    )
    assert len(await events_on_kafka(api_settings, 2)) == 2
    [letter] = await read_topic(api_settings.kafka_bootstrap, api_settings.topic("dlq"), 1)
    dead = orjson.loads(letter.value)
    assert dead["reason"] == "missing_model" and dead["origin"] == "api /v1/otlp/v1/traces"


@pytest.mark.parametrize(
    ("identity", "status", "reason"),
    [("none", 401, "unauthorized"), ("wrong", 401, "unauthorized"), ("read", 403, "forbidden")],
)
async def test_only_ingest_keys_may_export_and_the_refusal_is_an_otlp_status(
    client: httpx.AsyncClient, identity: str, status: int, reason: str
) -> None:
    body = export(span(chat())).SerializeToString()
    response = await client.post(TRACES, content=body, headers={**auth(identity), **PROTOBUF})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/x-protobuf"
    assert status_of(response)[0] == reason


async def test_the_ingest_key_header_works_as_for_collect(client: httpx.AsyncClient) -> None:
    body = export(span(chat())).SerializeToString()
    response = await client.post(
        TRACES, content=body, headers={"X-GenPulse-Key": INGEST_KEY, **PROTOBUF}
    )
    assert response.status_code == 200


async def test_metrics_are_accepted_and_counted_without_events(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    usage = scope.metrics.add(name="gen_ai.client.token.usage")
    usage.histogram.data_points.add(count=2, sum=1500)
    usage.histogram.data_points.add(count=1, sum=300)
    scope.metrics.add(name="http.server.duration").histogram.data_points.add(count=1)
    response = await client.post(
        "/v1/otlp/v1/metrics",
        content=request.SerializeToString(),
        headers={**auth("ingest"), **PROTOBUF},
    )
    assert response.status_code == 200, response.content
    points = app.state.api_metrics.otlp_metric_points
    assert points.labels("gen_ai.client.token.usage")._value.get() == 2
    assert points.labels("other")._value.get() == 1
    as_json = await client.post(
        "/v1/otlp/v1/metrics", content=b"{}", headers={**auth("ingest"), **JSON}
    )
    assert as_json.status_code == 200 and as_json.json() == {}

"""The pure parts of OTLP ingest: decoding bodies, mapping GenAI spans, records, answers."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from api.otlp.decode import (
    Encoding,
    OtlpError,
    encoding_of,
    is_gzip,
    parse_traces,
    read_body,
)
from api.otlp.genai import map_traces
from api.otlp.records import span_records
from api.otlp.reply import encode, failure, traces_answer
from producers.contract import event_from_object
from producers.price_overlay import overlay_from_object
from producers.pricing import PriceTable
from producers.settings import GenPulseSettings
from tests.api.otlp_spans import END_NS, chat, export, json_export, json_span, span

PRICES = PriceTable()
SETTINGS = GenPulseSettings(topic_prefix="unit")
# the specification's sonnet tier, in nano-dollars per token: input, output, cache write, read
SONNET = (3000, 15000, 3750, 300)


def sonnet_cost(uncached: int, output: int, cache_write: int = 0, cache_read: int = 0) -> int:
    return (
        uncached * SONNET[0] + output * SONNET[1] + cache_write * SONNET[2] + cache_read * SONNET[3]
    )


def events_of(*spans: Any) -> list[dict[str, Any]]:
    mapping = map_traces(export(*spans), PRICES)
    assert all(not call.reason for call in mapping.calls), mapping.calls
    return [event for call in mapping.calls for event in call.events]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


# -- mapping -------------------------------------------------------------------------------


def test_a_chat_span_is_the_model_called_event_the_sdk_sends() -> None:
    trace_id, span_id = os.urandom(16), os.urandom(8)
    [event] = events_of(span(chat(), trace_id=trace_id, span_id=span_id))
    event_from_object(event)  # valid by the wire contract
    assert event["type"] == "model_called"
    assert event["event_id"] == f"otel-{trace_id.hex()}-{span_id.hex()}-mc"
    assert event["timestamp"] == END_NS // 1_000_000
    assert event["session_id"] == trace_id.hex() and event["user_id"] is None
    assert event["service"] == "uvp-generator"
    data = event["data"]
    assert data["model"] == "claude-sonnet-4-5" and data["tier"] == "sonnet"
    assert (data["input_tokens"], data["output_tokens"]) == (1200, 300)
    assert data["cost_nanousd"] == sonnet_cost(1200, 300) and data["priced"] is True
    assert data["duration_ms"] == 1250.0
    assert data["provider"] == "anthropic" and data["source"] == "otlp"


def test_cached_tokens_are_taken_out_of_the_input_total_and_priced_apart() -> None:
    attributes = chat(
        **{
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.cache_read.input_tokens": 500,
            "gen_ai.usage.cache_creation.input_tokens": 200,
        }
    )
    data = events_of(span(attributes))[0]["data"]
    assert (data["input_tokens"], data["cache_read_tokens"], data["cache_write_tokens"]) == (
        500,
        500,
        200,
    )
    assert data["cost_nanousd"] == sonnet_cost(500, 300, cache_write=200, cache_read=500)


def test_an_input_smaller_than_its_cache_counts_is_taken_as_uncached_already() -> None:
    attributes = chat(
        **{"gen_ai.usage.input_tokens": 40, "gen_ai.usage.cache_read.input_tokens": 900}
    )
    data = events_of(span(attributes))[0]["data"]
    assert (data["input_tokens"], data["cache_read_tokens"]) == (40, 900)


@pytest.mark.parametrize(
    "attributes",
    [
        {  # OpenInference (openinference-instrumentation-anthropic)
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.model_name": "claude-sonnet-4-5",
            "llm.token_count.prompt": 1700,
            "llm.token_count.completion": 300,
            "llm.token_count.prompt_details.cache_read": 500,
        },
        {  # OpenLLMetry before the gen_ai.usage.input_tokens rename
            "llm.request.type": "chat",
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.prompt_tokens": 1700,
            "gen_ai.usage.completion_tokens": 300,
            "gen_ai.usage.cache_read_input_tokens": 500,
        },
        {  # the oldest: llm.usage.*
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "llm.usage.prompt_tokens": 1700,
            "llm.usage.completion_tokens": 300,
            "gen_ai.usage.cache_read_input_tokens": 500,
        },
    ],
    ids=["openinference", "openllmetry-old", "llm-usage"],
)
def test_older_and_other_conventions_map_to_the_same_call(attributes: dict[str, Any]) -> None:
    data = events_of(span(attributes))[0]["data"]
    assert (data["model"], data["input_tokens"], data["output_tokens"]) == (
        "claude-sonnet-4-5",
        1200,
        300,
    )
    assert data["cache_read_tokens"] == 500
    assert data["cost_nanousd"] == sonnet_cost(1200, 300, cache_read=500)


def test_the_response_model_wins_over_the_requested_one() -> None:
    attributes = chat("claude-sonnet-4-5", **{"gen_ai.response.model": "claude-3-haiku-2024"})
    data = events_of(span(attributes))[0]["data"]
    assert (data["model"], data["tier"]) == ("claude-3-haiku-2024", "haiku")


@pytest.mark.parametrize(
    ("attributes", "resource_session", "session", "user"),
    [
        ({"session.id": "s-1", "user.id": "alice"}, None, "s-1", "alice"),
        ({"gen_ai.conversation.id": "conv-9", "enduser.id": "bob"}, None, "conv-9", "bob"),
        ({}, "from-resource", "from-resource", None),
    ],
)
def test_session_and_user_come_from_the_attributes(
    attributes: dict[str, Any], resource_session: str | None, session: str, user: str | None
) -> None:
    request = export(span(chat(**attributes)))
    if resource_session:
        kv = request.resource_spans[0].resource.attributes.add()
        kv.key, kv.value.string_value = "session.id", resource_session
    [call] = map_traces(request, PRICES).calls
    assert (call.events[0]["session_id"], call.events[0]["user_id"]) == (session, user)


def test_an_error_span_without_usage_is_one_error_occurred() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "error.type": "RateLimitError",
    }
    [event] = events_of(span(attributes, error="429 rate_limit_error"))
    assert event["type"] == "error_occurred" and event["event_id"].endswith("-er")
    assert event["data"]["error_type"] == "rate_limit"
    assert event["data"]["message"] == "429 rate_limit_error"
    event_from_object(event)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("anthropic.APIConnectionError", "api_error"),
        ("APITimeoutError", "timeout"),
        ("529", "overloaded"),
        ("BadRequestError", "api_error"),
        ("ValueError", "ValueError"),
    ],
)
def test_error_types_are_named_as_the_sdk_names_them(raw: str, named: str) -> None:
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "error.type": raw}
    [event] = events_of(span(attributes, error="x"))
    assert event["data"]["error_type"] == named


def test_a_failed_span_that_reports_usage_is_still_charged() -> None:
    events = events_of(span(chat(**{"error.type": "OverloadedError"}), error="stream broke"))
    assert [e["type"] for e in events] == ["model_called", "error_occurred"]
    assert events[0]["data"]["cost_nanousd"] == sonnet_cost(1200, 300)
    assert events[1]["data"]["error_type"] == "overloaded"


def test_agent_tool_and_plain_spans_are_counted_not_mapped() -> None:
    agent = span(
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 9_000}, name="agent"
    )
    tool = span({"gen_ai.operation.name": "execute_tool"}, name="tool")
    chain = span({"openinference.span.kind": "CHAIN"}, name="chain")
    http = span({"http.request.method": "GET", "url.full": "https://x"}, name="GET")
    mapping = map_traces(export(agent, tool, chain, http, span(chat())), PRICES)
    assert (mapping.spans, len(mapping.calls), mapping.not_a_model_call, mapping.not_genai) == (
        5,
        1,
        3,
        1,
    )


def test_unknown_models_and_missing_usage_stay_visible_as_unpriced() -> None:
    unknown = events_of(span(chat("gpt-9-turbo")))[0]["data"]
    assert unknown["priced"] is False and "cost_nanousd" not in unknown
    bare = events_of(span({"gen_ai.operation.name": "chat", "gen_ai.request.model": "opus"}))
    assert bare[0]["data"]["priced"] is False and bare[0]["data"]["usage_reported"] is False


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3}, "missing_model"),
        (chat(**{"gen_ai.usage.output_tokens": -1}), "invalid_tokens"),
        (chat(**{"gen_ai.usage.output_tokens": 2.5}), "invalid_tokens"),
        (chat(**{"gen_ai.usage.output_tokens": True}), "invalid_tokens"),
    ],
)
def test_model_calls_that_cannot_be_mapped_say_why(attributes: dict[str, Any], reason: str) -> None:
    [call] = map_traces(export(span(attributes)), PRICES).calls
    assert call.reason == reason and call.message and not call.events


def test_counts_sent_as_strings_or_integral_doubles_are_read() -> None:
    attributes = chat(**{"gen_ai.usage.input_tokens": "1200", "gen_ai.usage.output_tokens": 300.0})
    data = events_of(span(attributes))[0]["data"]
    assert (data["input_tokens"], data["output_tokens"]) == (1200, 300)


@settings(max_examples=200, deadline=None)
@given(
    uncached=st.integers(0, 2_000_000),
    output=st.integers(0, 200_000),
    cache_read=st.integers(0, 1_000_000),
    cache_write=st.integers(0, 1_000_000),
)
def test_costs_are_the_price_tables_at_the_span_end_for_any_counts(
    uncached: int, output: int, cache_read: int, cache_write: int
) -> None:
    attributes = chat(
        **{
            "gen_ai.usage.input_tokens": uncached + cache_read + cache_write,
            "gen_ai.usage.output_tokens": output,
            "gen_ai.usage.cache_read.input_tokens": cache_read,
            "gen_ai.usage.cache_creation.input_tokens": cache_write,
        }
    )
    data = events_of(span(attributes))[0]["data"]
    priced = PRICES.price_call(
        "claude-sonnet-4-5",
        input_tokens=uncached,
        output_tokens=output,
        cache_write_tokens=cache_write,
        cache_read_tokens=cache_read,
        at_ms=END_NS // 1_000_000,
    )
    assert priced is not None and data["cost_nanousd"] == priced.cost_nanousd
    assert (data["price_source"], data["price_version"]) == (
        priced.price_source,
        priced.price_version,
    )


def test_a_span_is_priced_by_the_price_in_force_at_its_end() -> None:
    overlay = overlay_from_object(
        {
            "models": {
                "acme-mini": {
                    "prices": [
                        {"effective": "2025-01-01", "input": "1.00", "output": "2.00"},
                        {"effective": "2025-11-26T04:06:40Z", "input": "3.00", "output": "4.00"},
                    ]
                }
            }
        },
        default_version="t",
    )
    table = PriceTable(overlay)
    attributes = chat(
        "acme-mini", **{"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}
    )
    before, at_change = (
        map_traces(export(span(attributes, end_ns=END_NS - offset)), table).calls[0].events[0]
        for offset in (1_000_000, 0)
    )
    assert before["data"]["cost_nanousd"] == 10 * 1000 + 2000
    assert at_change["data"]["cost_nanousd"] == 10 * 3000 + 4000
    assert at_change["data"]["price_source"] == "overlay"


def test_event_ids_are_the_same_for_a_resent_export_and_differ_per_span() -> None:
    request = export(span(chat()), span(chat(), error="x"))
    first = [e["event_id"] for c in map_traces(request, PRICES).calls for e in c.events]
    again = [e["event_id"] for c in map_traces(request, PRICES).calls for e in c.events]
    assert first == again and len(set(first)) == 3


def test_a_span_the_contract_refuses_is_dead_lettered_alone() -> None:
    good, bad = span(chat()), span(chat(**{"session.id": "s" * 1_000_000}))
    out = span_records(map_traces(export(good, bad), PRICES), SETTINGS, now_ms=1)
    assert out.accepted_spans == 1 and out.events == 1
    [rejected] = out.rejected
    assert rejected.span_id == bad.span_id.hex() and rejected.reason == "invalid_field"
    topics = [r.topic for r in out.records]
    assert topics == ["unit.events", "unit.dlq"]
    letter = orjson.loads(out.records[1].value or b"")
    assert letter["reason"] == "invalid_field" and letter["origin"] == "api /v1/otlp/v1/traces"
    assert len(out.records[1].value or b"") < 4096  # the huge attribute is cut, not carried


# -- decoding --------------------------------------------------------------------------------


def test_otlp_json_with_hex_ids_is_the_same_message_as_protobuf() -> None:
    trace_hex, span_hex = "5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B174"
    attributes = {**chat(), "session.id": "s-7"}
    document = json_export(json_span(trace_hex, span_hex, attributes, error=True))
    document["resourceSpans"][0]["someFutureField"] = {"x": 1}  # unknown fields are ignored
    from_json = parse_traces(orjson.dumps(document), Encoding.JSON)
    proto = export(
        span(
            attributes,
            trace_id=bytes.fromhex(trace_hex),
            span_id=bytes.fromhex(span_hex),
            error="rate limited",
            name="chat",
        )
    )
    proto.resource_spans[0].scope_spans[0].spans[0].kind = 3
    from_proto = parse_traces(proto.SerializeToString(), Encoding.PROTOBUF)
    assert from_json == from_proto


@pytest.mark.parametrize(
    ("body", "encoding", "reason"),
    [
        (b"this is not protobuf", Encoding.PROTOBUF, "invalid_protobuf"),
        (b"{not json", Encoding.JSON, "invalid_json"),
        (b"[1, 2]", Encoding.JSON, "invalid_body"),
        (b'{"resourceSpans": 7}', Encoding.JSON, "invalid_body"),
        (
            orjson.dumps(json_export(json_span("zz" * 16, "00" * 8, chat()))),
            Encoding.JSON,
            "invalid_id",
        ),
    ],
)
def test_undecodable_bodies_are_400_with_a_reason(
    body: bytes, encoding: Encoding, reason: str
) -> None:
    with pytest.raises(OtlpError) as caught:
        parse_traces(body, encoding)
    assert (caught.value.status, caught.value.reason) == (400, reason)
    if reason == "invalid_id":
        assert caught.value.field == "resourceSpans[0].scopeSpans[0].spans[0].traceId"


def test_content_types_and_encodings() -> None:
    assert encoding_of("application/x-protobuf") is Encoding.PROTOBUF
    assert encoding_of("Application/JSON; charset=utf-8") is Encoding.JSON
    for bad in (None, "", "text/plain", "application/grpc"):
        with pytest.raises(OtlpError) as caught:
            encoding_of(bad)
        assert caught.value.status == 415
    assert is_gzip("gzip") and not is_gzip(None) and not is_gzip("identity")
    with pytest.raises(OtlpError) as caught:
        is_gzip("br")
    assert caught.value.status == 415


async def test_gzip_bodies_are_read_in_pieces_and_bounded() -> None:
    payload = export(span(chat())).SerializeToString() * 50
    packed = gzip.compress(payload)
    pieces = [packed[i : i + 7] for i in range(0, len(packed), 7)]
    assert await read_body(chunks(*pieces), True, 10**6, 10**6) == payload
    two_members = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert await read_body(chunks(two_members), True, 100, 100) == b"abcd"


async def test_a_gzip_bomb_stops_at_the_decoded_limit() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = bomb.compress(b"\0" * (200 * 1024 * 1024)) + bomb.flush()
    assert len(packed) < 300 * 1024  # 200 MiB of zeros in a few hundred KiB
    with pytest.raises(OtlpError) as caught:
        await read_body(chunks(packed), True, 20 * 1024 * 1024, 20 * 1024 * 1024)
    assert (caught.value.status, caught.value.reason) == (413, "body_too_large")
    assert "decompressed" in caught.value.message


@pytest.mark.parametrize(
    ("parts", "gzipped", "status", "reason"),
    [
        ((b"x" * 60, b"x" * 60), False, 413, "body_too_large"),
        ((gzip.compress(b"abc")[:-6],), True, 400, "invalid_gzip"),
        ((b"plain, not gzip",), True, 400, "invalid_gzip"),
        ((b"",), True, 400, "invalid_gzip"),
    ],
)
async def test_bodies_over_the_limit_or_broken_gzip_are_refused(
    parts: tuple[bytes, ...], gzipped: bool, status: int, reason: str
) -> None:
    with pytest.raises(OtlpError) as caught:
        await read_body(chunks(*parts), gzipped, 100, 100)
    assert (caught.value.status, caught.value.reason) == (status, reason)


# -- answers ---------------------------------------------------------------------------------


def test_answers_are_the_otlp_messages_in_either_encoding() -> None:
    assert encode(traces_answer(0, ""), Encoding.PROTOBUF) == b""  # full success: unset
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(encode(traces_answer(2, "two refused"), Encoding.PROTOBUF))
    assert answer.partial_success.rejected_spans == 2
    assert orjson.loads(encode(traces_answer(2, "two refused"), Encoding.JSON)) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "two refused"}
    }
    status = status_pb2.Status()
    status.ParseFromString(
        encode(failure(400, "invalid_id", "bad id", "spans[0].traceId"), Encoding.PROTOBUF)
    )
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and info.reason == "invalid_id"
    assert status.details[1].Unpack(bad) and bad.field_violations[0].field == "spans[0].traceId"
    as_json = json_format.MessageToDict(status)
    assert as_json["message"] == "bad id" and as_json["code"] == 3

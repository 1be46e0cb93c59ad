"""Build OTLP trace exports by hand (protobuf messages, OTLP/JSON documents) for the tests."""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

END_NS = 1_764_130_000_000_000_000  # 2025-11-26T04:06:40Z
START_NS = END_NS - 1_250_000_000  # 1.25 s earlier


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def span(
    attributes: dict[str, Any],
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    error: str | None = None,
    start_ns: int = START_NS,
    end_ns: int = END_NS,
    name: str = "chat claude",
) -> Span:
    result = Span(
        trace_id=trace_id or os.urandom(16),
        span_id=span_id or os.urandom(8),
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns,
        attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()],
    )
    if error is not None:
        result.status.code = Status.STATUS_CODE_ERROR
        result.status.message = error
    return result


def chat(model: str = "claude-sonnet-4-5", **attributes: Any) -> dict[str, Any]:
    """The attributes a current instrumentation sets on a chat span (input includes cache)."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        **attributes,
    }


def export(*spans: Span, service: str = "uvp-generator") -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    scope_spans.spans.extend(spans)
    return request


def json_export(*spans: dict[str, Any], service: str = "uvp-generator") -> dict[str, Any]:
    """An OTLP/JSON document as the specification writes it: hex ids, camelCase, int64 strings."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "tests"}, "spans": list(spans)}],
            }
        ]
    }


def json_span(
    trace_hex: str, span_hex: str, attributes: dict[str, Any], error: bool = False
) -> dict[str, Any]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": v}

    body: dict[str, Any] = {
        "traceId": trace_hex,
        "spanId": span_hex,
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(END_NS),
        "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
    }
    if error:
        body["status"] = {"code": 2, "message": "rate limited"}
    return body

"""GenAI semantic-convention spans → the genpulse events the SDK sends (pure functions).

One inference span (chat, text_completion, generate_content, embeddings; or an OpenInference
LLM/EMBEDDING span; or an older span with a model and no operation) becomes one
`model_called` event priced by `producers.pricing` at the span's end time, and, when its
status is ERROR, one `error_occurred`. Agent, tool and workflow spans (`invoke_agent`,
`execute_tool`, ...) are GenAI but not model calls: their usage, when they carry any, sums
their children's, so mapping them would count the same tokens twice. Spans without GenAI
attributes are counted and left alone.

Event ids derive from trace id + span id, so an export sent twice is the same events and the
worker's de-duplication on `event_id` drops the copy. docs/integrations.md ("From
OpenTelemetry") lists every attribute read, old names included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from producers.contract import WIRE_VERSION
from producers.pricing import PriceTable

INFERENCE_OPERATIONS = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "completion", "embedding"}
)
"""`gen_ai.operation.name` (and OpenLLMetry's older `llm.request.type`) values of a model call."""

OPENINFERENCE_MODEL_KINDS = frozenset({"LLM", "EMBEDDING"})

# Each field is read from the first attribute present, newest convention first.
MODEL_KEYS = ("gen_ai.response.model", "llm.model_name", "gen_ai.request.model")
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
INPUT_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.usage.completion_tokens",
    "llm.token_count.completion",
)
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
SESSION_KEYS = (
    "session.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",
)
USER_KEYS = ("user.id", "enduser.id", "traceloop.association.properties.user_id")
OPERATION_KEY = "gen_ai.operation.name"
OLD_OPERATION_KEY = "llm.request.type"
OPENINFERENCE_KIND_KEY = "openinference.span.kind"
ERROR_TYPE_KEY = "error.type"

_GENAI_MARKERS = (
    OPERATION_KEY,
    OLD_OPERATION_KEY,
    OPENINFERENCE_KIND_KEY,
    *PROVIDER_KEYS,
    *MODEL_KEYS,
)
WANTED = frozenset(
    {
        *_GENAI_MARKERS,
        *INPUT_KEYS,
        *OUTPUT_KEYS,
        *CACHE_READ_KEYS,
        *CACHE_WRITE_KEYS,
        *SESSION_KEYS,
        *USER_KEYS,
        ERROR_TYPE_KEY,
    }
)
"""The only attributes read; the rest (prompts, completions) are never converted."""

ERROR_TYPES = {
    **dict.fromkeys(("ratelimiterror", "429"), "rate_limit"),
    **dict.fromkeys(("overloadederror", "529"), "overloaded"),
    **dict.fromkeys(
        (
            "apitimeouterror",
            "timeouterror",
            "timeout",
            "readtimeout",
            "requesttimeouterror",
            "gatewaytimeouterror",
            "408",
            "504",
        ),
        "timeout",
    ),
    **dict.fromkeys(
        (
            "apierror",
            "apistatuserror",
            "apiconnectionerror",
            "internalservererror",
            "serviceunavailableerror",
            "badrequesterror",
            "authenticationerror",
            "permissiondeniederror",
            "notfounderror",
            "unprocessableentityerror",
            "500",
            "502",
            "503",
        ),
        "api_error",
    ),
}
"""Error types as the SDK's anthropic instrumentation names them; others pass through."""

MAX_MESSAGE_CHARS = 2000
MAX_FACT_CHARS = 512
_EXCEPTION_KEYS = frozenset({"exception.type", "exception.message"})
UNKNOWN_SERVICE = "unknown_service"


@dataclass(frozen=True)
class SpanEvents:
    """The events of one model-call span, or why it could not be mapped."""

    trace_id: str
    span_id: str
    facts: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    message: str = ""


@dataclass
class TraceMapping:
    calls: list[SpanEvents] = field(default_factory=list)
    spans: int = 0
    not_genai: int = 0
    not_a_model_call: int = 0


def map_traces(request: ExportTraceServiceRequest, prices: PriceTable) -> TraceMapping:
    """Sort every span of an export: model calls (with their events), other GenAI, the rest."""
    result = TraceMapping()
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes, WANTED | {"service.name"})
        service = _text(resource.get("service.name")) or UNKNOWN_SERVICE
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                result.spans += 1
                attributes = _attributes(span.attributes, WANTED)
                kind = classify(attributes)
                if kind == "not_genai":
                    result.not_genai += 1
                elif kind == "not_a_model_call":
                    result.not_a_model_call += 1
                else:
                    result.calls.append(map_span(span, attributes, resource, service, prices))
    return result


def classify(attributes: Mapping[str, Any]) -> str:
    """ "model_call", "not_a_model_call" (agent/tool/workflow GenAI spans) or "not_genai"."""
    operation = _text(attributes.get(OPERATION_KEY))
    if operation:
        return "model_call" if operation.lower() in INFERENCE_OPERATIONS else "not_a_model_call"
    openinference_kind = _text(attributes.get(OPENINFERENCE_KIND_KEY))
    if openinference_kind:
        if openinference_kind.upper() in OPENINFERENCE_MODEL_KINDS:
            return "model_call"
        return "not_a_model_call"
    old_operation = _text(attributes.get(OLD_OPERATION_KEY))
    if old_operation:
        return "model_call" if old_operation.lower() in INFERENCE_OPERATIONS else "not_a_model_call"
    if any(_text(attributes.get(key)) for key in MODEL_KEYS):
        return "model_call"
    if any(key in attributes for key in _GENAI_MARKERS):
        return "not_a_model_call"
    return "not_genai"


def map_span(
    span: Span,
    attributes: Mapping[str, Any],
    resource: Mapping[str, Any],
    service: str,
    prices: PriceTable,
) -> SpanEvents:
    """The events of one model-call span (or its rejection reason)."""
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    read = {"trace_id": trace_id, "span_id": span_id, "name": span.name, **attributes}
    # what a dead letter keeps: bounded, so one huge attribute cannot sink the Kafka write
    facts = {k: v[:MAX_FACT_CHARS] if isinstance(v, str) else v for k, v in read.items()}
    if len(span.trace_id) != 16 or len(span.span_id) != 8 or not any(span.trace_id):
        return SpanEvents(
            trace_id,
            span_id,
            facts,
            reason="invalid_ids",
            message="span has no valid trace/span id",
        )
    end_ns = span.end_time_unix_nano or span.start_time_unix_nano
    if not end_ns:
        return SpanEvents(
            trace_id, span_id, facts, reason="missing_time", message="span has no time"
        )
    model = _first_text(attributes, MODEL_KEYS)
    if not model:
        return SpanEvents(
            trace_id,
            span_id,
            facts,
            reason="missing_model",
            message="GenAI span without gen_ai.request.model / gen_ai.response.model",
        )
    try:
        usage = _usage(attributes)
    except ValueError as exc:
        return SpanEvents(trace_id, span_id, facts, reason="invalid_tokens", message=str(exc))
    at_ms = end_ns // 1_000_000
    common = {
        "v": WIRE_VERSION,
        "timestamp": at_ms,
        "session_id": _first_text(attributes, SESSION_KEYS)
        or _first_text(resource, SESSION_KEYS)
        or trace_id,
        "user_id": _first_text(attributes, USER_KEYS) or _first_text(resource, USER_KEYS),
        "service": service,
    }
    origin = {
        "source": "otlp",
        "provider": _first_text(attributes, PROVIDER_KEYS),
        "trace_id": trace_id,
        "span_id": span_id,
    }
    events: list[dict[str, Any]] = []
    failed = span.status.code == Status.STATUS_CODE_ERROR
    if usage is not None or not failed:
        data = _model_call(model, usage, at_ms, prices)
        if span.end_time_unix_nano >= span.start_time_unix_nano > 0:
            data["duration_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        events.append(
            {
                **common,
                "type": "model_called",
                "event_id": f"otel-{trace_id}-{span_id}-mc",
                "data": {**data, **origin},
            }
        )
    if failed:
        events.append(
            {
                **common,
                "type": "error_occurred",
                "event_id": f"otel-{trace_id}-{span_id}-er",
                "data": {**_error(span, attributes), "model": model, **origin},
            }
        )
    return SpanEvents(trace_id, span_id, facts, events)


@dataclass(frozen=True)
class Usage:
    input_tokens: int  # not read from or written to a cache
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int


def _usage(attributes: Mapping[str, Any]) -> Usage | None:
    """Token counts, or None when the span reports none.

    The conventions (and both Anthropic instrumentations) count cached tokens inside
    `input_tokens`; genpulse prices uncached input, cache reads and cache writes apart, so
    the cache counts are taken out. A sender whose input is smaller than its cache counts
    evidently reports uncached input already, and is taken as it is.
    """
    total_in = _first_count(attributes, INPUT_KEYS)
    output = _first_count(attributes, OUTPUT_KEYS)
    if total_in is None and output is None:
        return None
    cache_read = _first_count(attributes, CACHE_READ_KEYS) or 0
    cache_write = _first_count(attributes, CACHE_WRITE_KEYS) or 0
    total_in = total_in or 0
    cached = cache_read + cache_write
    uncached = total_in - cached if total_in >= cached else total_in
    return Usage(uncached, output or 0, cache_write, cache_read)


def _model_call(model: str, usage: Usage | None, at_ms: int, prices: PriceTable) -> dict[str, Any]:
    if usage is None:  # counted as an unpriced call: visible, never a silent $0
        unpriced: dict[str, Any] = {"model": model, "input_tokens": 0, "output_tokens": 0}
        if (tier := prices.tier_for(model)) is not None:
            unpriced["tier"] = tier
        return {**unpriced, "priced": False, "usage_reported": False}
    data: dict[str, Any] = {
        "model": model,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
    }
    if (tier := prices.tier_for(model)) is not None:
        data["tier"] = tier
    priced = prices.price_call(
        model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        at_ms=at_ms,
    )
    if priced is None:
        data["priced"] = False
    else:
        data["cost_nanousd"] = priced.cost_nanousd
        data["priced"] = True
        data["price_source"] = priced.price_source
        data["price_version"] = priced.price_version
    return data


def _error(span: Span, attributes: Mapping[str, Any]) -> dict[str, Any]:
    exception = next((e for e in span.events if e.name == "exception"), None)
    details = _attributes(exception.attributes, _EXCEPTION_KEYS) if exception else {}
    raw_type = _text(attributes.get(ERROR_TYPE_KEY)) or _text(details.get("exception.type"))
    raw_type = (raw_type or "_OTHER").rsplit(".", 1)[-1]
    message = span.status.message or _text(details.get("exception.message")) or ""
    return {
        "error_type": ERROR_TYPES.get(raw_type.lower(), raw_type)[:200],
        "message": message[:MAX_MESSAGE_CHARS],
    }


def _attributes(pairs: Iterable[KeyValue], wanted: frozenset[str]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs if kv.key in wanted}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_text(attributes: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _first_count(attributes: Mapping[str, Any], keys: Iterable[str]) -> int | None:
    for key in keys:
        if key in attributes:
            return _count(key, attributes[key])
    return None


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{key} is a boolean, not a token count")
    integral_float = isinstance(value, float) and value.is_integer()
    if integral_float or (isinstance(value, str) and value.strip().isdigit()):
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}={value!r:.40} is not a whole token count >= 0")
    return value


def metric_points(request: ExportMetricsServiceRequest) -> Iterator[tuple[str, int]]:
    """(metric name, data points) of an ExportMetricsServiceRequest, for counting."""
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                points = getattr(metric, kind).data_points if kind else []
                yield metric.name, len(points)

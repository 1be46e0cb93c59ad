"""POST /v1/otlp/v1/traces and /v1/otlp/v1/metrics: OTLP/HTTP ingest, answered as OTLP says.

Exporters append `/v1/traces` and `/v1/metrics` to their base URL, so the base URL is
`<api>/v1/otlp`. Every answer, errors included, is in the request's encoding: an
Export…ServiceResponse on success (partial success counts rejected spans), a
`google.rpc.Status` otherwise, so exporters and collectors read it as from any OTLP backend.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api.auth import Role, check_origin, require_ingest
from api.control import now_ms
from api.errors import ApiError
from api.kafka_writer import KafkaUnavailable, OutRecord
from api.observability import ApiMetrics
from api.otlp.decode import (
    Encoding,
    OtlpError,
    encoding_of,
    is_gzip,
    parse_metrics,
    parse_traces,
    read_body,
)
from api.otlp.genai import map_traces, metric_points
from api.otlp.records import SpanRecords, span_records
from api.otlp.reply import encode, failure, metrics_answer, traces_answer
from api.settings import ApiSettings

OFF_LOOP_BYTES = 256 * 1024
"""Bodies larger than this are parsed and mapped on a worker thread, off the event loop."""

COUNTED_METRICS = frozenset({"gen_ai.client.operation.duration", "gen_ai.client.token.usage"})


class OtlpRoute(APIRoute):
    """Answers every failure (auth and Kafka ones too) as a google.rpc.Status, per OTLP."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _failure(request, exc.status, exc.error, exc.message, headers=exc.headers)
            except OtlpError as exc:
                return _failure(request, exc.status, exc.reason, exc.message, field=exc.field)

        return answer


router = APIRouter(tags=["ingest"], route_class=OtlpRoute)

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_STATUS = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
    "application/x-protobuf": _BINARY,
}


def _export_doc(signal: str, rejected: str) -> dict[str, Any]:
    failures = {
        400: "Not decodable as an OTLP request (bad protobuf, JSON, gzip or ids).",
        401: "No ingest key, or one that is not configured.",
        403: "Not an ingest key, or an Origin outside GENPULSE_API_CORS_ORIGINS.",
        413: "Body over GENPULSE_API_OTLP_MAX_BODY_BYTES, or over "
        "GENPULSE_API_OTLP_MAX_DECODED_BYTES once gunzipped (20 MiB each by default).",
        415: "Content-Type not application/x-protobuf or application/json, or a "
        "Content-Encoding other than gzip.",
        503: "Kafka is unreachable; nothing was written: retry (Retry-After).",
    }
    return {
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-protobuf": _BINARY,
                    "application/json": {"schema": {"type": "object"}},
                },
            }
        },
        "responses": {
            200: {
                "description": f"{signal}, with `partialSuccess.{rejected}` when some were "
                "refused (they are on the dead-letter topic) and `errorMessage` saying why "
                "or what was ignored.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"partialSuccess": {"type": "object"}},
                        }
                    },
                    "application/x-protobuf": _BINARY,
                },
            },
            **{
                status: {"description": text, "content": _STATUS}
                for status, text in failures.items()
            },
        },
        "response_class": Response,
    }


@router.post(
    "/v1/otlp/v1/traces",
    summary="OTLP/HTTP traces: GenAI spans become model_called / error_occurred events",
    description=(
        "An ExportTraceServiceRequest as binary protobuf or OTLP/JSON, optionally gzipped. "
        "Model-call spans (gen_ai.* or OpenInference llm.* attributes) become the events the "
        "SDK sends, keyed by session (session.id, gen_ai.conversation.id, else the trace id); "
        "other spans are counted and ignored. See docs/integrations.md."
    ),
    **_export_doc("ExportTraceServiceResponse", "rejectedSpans"),
)
async def traces(
    request: Request, _: Annotated[frozenset[Role], Depends(require_ingest)]
) -> Response:
    settings: ApiSettings = request.app.state.settings
    encoding, body = await _read(request, settings)
    prices = request.app.state.prices

    def sort() -> tuple[SpanRecords, int, int, int]:
        mapping = map_traces(parse_traces(body, encoding), prices)
        out = span_records(mapping, settings, now_ms())
        return out, mapping.spans, mapping.not_genai, mapping.not_a_model_call

    out, spans, not_genai, not_a_call = (
        await run_in_threadpool(sort) if len(body) > OFF_LOOP_BYTES else sort()
    )
    await _write(request, out.records)
    metrics: ApiMetrics = request.app.state.api_metrics
    for outcome, count in (
        ("accepted", out.accepted_spans),
        ("rejected", len(out.rejected)),
        ("not_genai", not_genai),
        ("not_a_model_call", not_a_call),
    ):
        metrics.otlp_spans.labels(outcome).inc(count)
    notes = []
    if out.rejected:
        first = out.rejected[0]
        notes.append(
            f"{len(out.rejected)} of {spans} spans rejected (sent to the dead-letter topic); "
            f"first: span {first.span_id} of trace {first.trace_id}: {first.reason}: "
            f"{first.message}"
        )
    if not_genai or not_a_call:
        notes.append(
            f"{not_genai} spans without GenAI attributes and {not_a_call} GenAI agent/tool "
            "spans were ignored: genpulse keeps model calls only"
        )
    answer = traces_answer(len(out.rejected), "; ".join(notes))
    return Response(encode(answer, encoding), media_type=encoding.value)


@router.post(
    "/v1/otlp/v1/metrics",
    summary="OTLP/HTTP metrics: accepted and counted, not turned into events",
    description=(
        "gen_ai.client.token.usage and gen_ai.client.operation.duration repeat what the "
        "spans of the same calls say (as histograms, without session or user), so genpulse "
        "counts their data points and takes costs and latencies from the spans only; "
        "docs/integrations.md says why in full."
    ),
    **_export_doc("ExportMetricsServiceResponse", "rejectedDataPoints"),
)
async def metrics(
    request: Request, _: Annotated[frozenset[Role], Depends(require_ingest)]
) -> Response:
    settings: ApiSettings = request.app.state.settings
    encoding, body = await _read(request, settings)
    export = (
        await run_in_threadpool(parse_metrics, body, encoding)
        if len(body) > OFF_LOOP_BYTES
        else parse_metrics(body, encoding)
    )
    counter = request.app.state.api_metrics.otlp_metric_points
    total = 0
    for name, points in metric_points(export):
        counter.labels(name if name in COUNTED_METRICS else "other").inc(points)
        total += points
    note = (
        f"{total} data points counted, not stored: genpulse takes model calls from GenAI "
        "spans (send traces to /v1/otlp/v1/traces)"
        if total
        else ""
    )
    return Response(encode(metrics_answer(0, note), encoding), media_type=encoding.value)


async def _read(request: Request, settings: ApiSettings) -> tuple[Encoding, bytes]:
    check_origin(request, settings)
    encoding = encoding_of(request.headers.get("content-type"))
    gzip = is_gzip(request.headers.get("content-encoding"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.api_otlp_max_body_bytes:
        raise OtlpError(
            413,
            "body_too_large",
            f"the request body is larger than {settings.api_otlp_max_body_bytes} bytes; "
            "export smaller batches (e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE)",
        )
    body = await read_body(
        request.stream(),
        gzip,
        settings.api_otlp_max_body_bytes,
        settings.api_otlp_max_decoded_bytes,
    )
    return encoding, body


async def _write(request: Request, records: list[OutRecord]) -> None:
    try:
        await request.app.state.writer.write(records)
    except KafkaUnavailable as exc:
        raise ApiError(
            503,
            "kafka_unavailable",
            f"Kafka is unreachable ({exc}); nothing was written, send the export again",
            headers={"Retry-After": "5"},
        ) from None


def _failure(
    request: Request,
    status: int,
    reason: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    try:
        encoding = encoding_of(request.headers.get("content-type"))
    except OtlpError:
        encoding = Encoding.JSON  # the request's encoding is unknown: answer readably
    body = encode(failure(status, reason, message, field), encoding)
    return Response(body, status_code=status, media_type=encoding.value, headers=headers)

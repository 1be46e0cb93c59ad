"""OTLP/HTTP request bodies into OTLP protobuf messages, as the OTLP specification defines them.

Both encodings become the same `opentelemetry-proto` message, so everything downstream
reads one shape: binary protobuf is parsed as is; OTLP/JSON is the proto3 JSON mapping
(parsed by protobuf's own `json_format`) except that trace and span ids are hex, not base64,
so those are converted first. Bodies are read chunk by chunk and gunzipped incrementally
with a bound on the output, so neither a large body nor a small gzip bomb is ever held whole
beyond the configured limits.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

M = TypeVar("M", bound=Message)

_GZIP_WBITS = 16 + zlib.MAX_WBITS


class Encoding(StrEnum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


class OtlpError(Exception):
    """A request OTLP refuses as a whole: HTTP status, stable reason, what to do."""

    def __init__(self, status: int, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.field = field


def encoding_of(content_type: str | None) -> Encoding:
    """The body's encoding from its Content-Type (parameters such as charset ignored)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    for encoding in Encoding:
        if kind == encoding.value:
            return encoding
    raise OtlpError(
        415,
        "unsupported_media_type",
        f"Content-Type {kind or '(none)'!r} is not OTLP: send application/x-protobuf "
        "or application/json",
    )


def is_gzip(content_encoding: str | None) -> bool:
    """True for gzip, False for none/identity; anything else is refused (OTLP needs these two)."""
    value = (content_encoding or "").strip().lower()
    if value in ("", "identity", "none"):
        return False
    if value in ("gzip", "x-gzip"):
        return True
    raise OtlpError(
        415,
        "unsupported_content_encoding",
        f"Content-Encoding {value!r} is not supported: send gzip or no compression",
    )


async def read_body(
    chunks: AsyncIterator[bytes], gzip: bool, max_wire_bytes: int, max_decoded_bytes: int
) -> bytes:
    """The whole (decompressed) body, refusing with 413 as soon as either limit is passed."""
    received = 0
    out = bytearray()
    inflater = zlib.decompressobj(_GZIP_WBITS) if gzip else None
    async for chunk in chunks:
        received += len(chunk)
        if received > max_wire_bytes:
            raise _too_large("the request body", max_wire_bytes)
        if inflater is None:
            out += chunk
        else:
            inflater = _inflate(inflater, chunk, out, max_decoded_bytes)
        if len(out) > max_decoded_bytes:
            raise _too_large("the decompressed body", max_decoded_bytes)
    if inflater is not None and not inflater.eof:
        raise OtlpError(400, "invalid_gzip", "the gzip body ends before its end marker")
    return bytes(out)


def _inflate(inflater: Any, data: bytes, out: bytearray, limit: int) -> Any:
    """Feed `data`, never producing more than one byte past `limit` (a bomb stops there)."""
    try:
        while data:
            if inflater.eof:  # a multi-member gzip file: the next member starts here
                inflater = zlib.decompressobj(_GZIP_WBITS)
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                return inflater
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
    except zlib.error as exc:
        raise OtlpError(400, "invalid_gzip", f"Content-Encoding is gzip but {exc}") from None
    return inflater


def _too_large(what: str, limit: int) -> OtlpError:
    return OtlpError(
        413,
        "body_too_large",
        f"{what} is larger than {limit} bytes; export smaller batches "
        "(e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE)",
    )


def parse_traces(body: bytes, encoding: Encoding) -> ExportTraceServiceRequest:
    return _parse(body, encoding, ExportTraceServiceRequest(), _hex_ids_of_traces)


def parse_metrics(body: bytes, encoding: Encoding) -> ExportMetricsServiceRequest:
    return _parse(body, encoding, ExportMetricsServiceRequest(), _hex_ids_of_metrics)


def _parse(
    body: bytes, encoding: Encoding, message: M, fix_ids: Callable[[dict[str, Any]], None]
) -> M:
    name = type(message).__name__
    if encoding is Encoding.PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise OtlpError(
                400, "invalid_protobuf", f"the body is not a binary {name} ({exc})"
            ) from None
        return message
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpError(400, "invalid_json", f"the body is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(document, dict):
        raise OtlpError(400, "invalid_body", f"expected a JSON object ({name})")
    fix_ids(document)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise OtlpError(
            400, "invalid_body", f"the body is not an OTLP/JSON {name}: {exc}"
        ) from None
    return message


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_to_base64(holder: Any, where: str) -> None:
    """OTLP/JSON ids are hex; protobuf's JSON mapping expects base64 for bytes fields."""
    if not isinstance(holder, dict):
        return
    for key in _ID_KEYS:
        value = holder.get(key)
        if isinstance(value, str) and value:
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise OtlpError(
                    400,
                    "invalid_id",
                    f"{where}.{key} {value[:40]!r} is not hex (OTLP/JSON ids are hex strings)",
                    field=f"{where}.{key}",
                ) from None
            holder[key] = base64.b64encode(raw).decode("ascii")


def _items(holder: Any, *keys: str) -> list[tuple[int, Any]]:
    for key in keys:
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, list):
            return list(enumerate(value))
    return []


def _hex_ids_of_traces(document: dict[str, Any]) -> None:
    for r, resource in _items(document, "resourceSpans", "resource_spans"):
        for s, scope in _items(resource, "scopeSpans", "scope_spans"):
            for i, span in _items(scope, "spans"):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                _hex_to_base64(span, where)
                for n, link in _items(span, "links"):
                    _hex_to_base64(link, f"{where}.links[{n}]")


_POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def _hex_ids_of_metrics(document: dict[str, Any]) -> None:
    for r, resource in _items(document, "resourceMetrics", "resource_metrics"):
        for s, scope in _items(resource, "scopeMetrics", "scope_metrics"):
            for m, metric in _items(scope, "metrics"):
                points_of = metric if isinstance(metric, dict) else {}
                for kind in _POINT_KINDS:
                    for p, point in _items(points_of.get(kind), "dataPoints", "data_points"):
                        for e, exemplar in _items(point, "exemplars"):
                            where = (
                                f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]"
                                f".{kind}.dataPoints[{p}].exemplars[{e}]"
                            )
                            _hex_to_base64(exemplar, where)

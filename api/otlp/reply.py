"""OTLP/HTTP answers, in the request's own encoding as the specification requires.

Success (full or partial) is the signal's Export…ServiceResponse; every 4xx/5xx is a
`google.rpc.Status` whose details carry an `ErrorInfo` with the API's stable error code
(`reason`, domain "genpulse") and, for bad data, a `BadRequest` naming the field.
"""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from api.otlp.decode import Encoding

GRPC_CODE_OF_STATUS = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    413: code_pb2.INVALID_ARGUMENT,
    415: code_pb2.INVALID_ARGUMENT,
    503: code_pb2.UNAVAILABLE,
}


def encode(message: Message, encoding: Encoding) -> bytes:
    if encoding is Encoding.PROTOBUF:
        return bytes(message.SerializeToString())
    return str(json_format.MessageToJson(message, indent=None)).encode()


def traces_answer(rejected: int, error_message: str) -> ExportTraceServiceResponse:
    """Partial success is set only when something was rejected or there is a warning."""
    if not rejected and not error_message:
        return ExportTraceServiceResponse()
    return ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(
            rejected_spans=rejected, error_message=error_message
        )
    )


def metrics_answer(rejected: int, error_message: str) -> ExportMetricsServiceResponse:
    if not rejected and not error_message:
        return ExportMetricsServiceResponse()
    return ExportMetricsServiceResponse(
        partial_success=ExportMetricsPartialSuccess(
            rejected_data_points=rejected, error_message=error_message
        )
    )


def failure(status: int, reason: str, message: str, field: str | None = None) -> status_pb2.Status:
    answer = status_pb2.Status(
        code=GRPC_CODE_OF_STATUS.get(status, code_pb2.UNKNOWN), message=message
    )
    answer.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="genpulse"))
    if status == 400:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=field or "body", description=message
        )
        answer.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return answer

"""POST /v1/collect: browser events (JSON or sendBeacon's text/plain) into Kafka, all or nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Role, check_origin, require_ingest
from api.control import now_ms
from api.errors import AUTHED, KAFKA_DOWN, ApiError, ErrorBody
from api.ingest import BodyError, parse_batch, sort_events
from api.kafka_writer import KafkaUnavailable, TopicMissing
from api.settings import ApiSettings

router = APIRouter(tags=["ingest"])

ACCEPTED_TYPES = ("application/json", "text/plain")


class RejectedEvent(BaseModel):
    index: int = Field(description="Position of the event in the batch, from 0.")
    reason: str = Field(description="Stable code from docs/contract.md, e.g. missing_field.")
    message: str


class CollectResult(BaseModel):
    accepted: int = Field(description="Events written to <prefix>.events.")
    rejected: int = Field(description="Events refused; each is also on <prefix>.dlq.")
    errors: list[RejectedEvent] = Field(description="Why each refused event was refused.")


_EXAMPLE_BATCH = {
    "events": [
        {
            "type": "uvp_approved",
            "event_id": "b1f0c6a2e9d84c1f",
            "timestamp": 1764130000000,
            "session_id": "sess-42",
            "user_id": "alice",
            "service": "web",
            "data": {},
        }
    ]
}


@router.post(
    "/v1/collect",
    status_code=202,
    response_model=CollectResult,
    summary="Ingest a batch of browser events",
    description=(
        'Body: a JSON array of events or `{"events": [...]}`, sent as `application/json` or '
        "`text/plain` (what `navigator.sendBeacon` sends). Each event follows docs/contract.md. "
        "Valid events go to `<prefix>.events` keyed by session id, invalid ones to "
        "`<prefix>.dlq`, all in one Kafka transaction: a 503 means nothing was written."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": ["array", "object"]},
                    "example": _EXAMPLE_BATCH,
                },
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
    responses={
        **AUTHED,
        400: {"model": ErrorBody, "description": "Not JSON, or not a list of events."},
        413: {"model": ErrorBody, "description": "Over 1 MiB, or over 500 events."},
        415: {"model": ErrorBody, "description": "Neither JSON nor text/plain."},
        **KAFKA_DOWN,
    },
)
async def collect(
    request: Request, _: Annotated[frozenset[Role], Depends(require_ingest)]
) -> JSONResponse:
    settings: ApiSettings = request.app.state.settings
    check_origin(request, settings)
    _check_content_type(request)
    body = await _read_limited(request, settings.api_max_body_bytes)
    try:
        events = parse_batch(body, settings.api_max_batch_events)
    except BodyError as exc:
        raise ApiError(exc.status, exc.error, exc.message) from None
    outcome = sort_events(events, settings, origin="api /v1/collect", now_ms=now_ms())
    try:
        await request.app.state.writer.write(outcome.records)
    except TopicMissing as exc:
        raise ApiError(
            503,
            "topic_missing",
            f"{exc}; nothing was written, send the batch again",
            headers={"Retry-After": "5"},
        ) from None
    except KafkaUnavailable as exc:
        raise ApiError(
            503,
            "kafka_unavailable",
            f"Kafka is unreachable ({exc}); nothing was written, send the batch again",
            headers={"Retry-After": "5"},
        ) from None
    request.app.state.api_metrics.count_collected(outcome.accepted, len(outcome.rejected))
    result = CollectResult(
        accepted=outcome.accepted,
        rejected=len(outcome.rejected),
        errors=[RejectedEvent(**vars(r)) for r in outcome.rejected],
    )
    return JSONResponse(result.model_dump(), status_code=202)


def _check_content_type(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind not in ACCEPTED_TYPES:
        raise ApiError(
            415, "unsupported_media_type", "send application/json or text/plain (sendBeacon)"
        )


async def _read_limited(request: Request, limit: int) -> bytes:
    too_big = ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)

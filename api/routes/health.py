"""Liveness and readiness, without auth (load balancers and orchestrators call them)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.kafka_writer import KafkaUnavailable, TransactionalWriter

router = APIRouter(tags=["health"])


class Alive(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(
        description="Per dependency: 'ok' or what is wrong.",
        examples=[{"redis": "ok", "kafka": "ok"}],
    )


@router.get("/healthz", response_model=Alive, summary="The process is up")
async def healthz() -> Alive:
    return Alive()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Redis and Kafka are reachable",
    responses={503: {"model": Readiness, "description": "A dependency is unreachable."}},
)
async def readyz(request: Request) -> JSONResponse:
    redis_check, kafka_check = await asyncio.gather(
        _redis(request), _kafka(request.app.state.writer)
    )
    checks = {"redis": redis_check, "kafka": kafka_check}
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _redis(request: Request) -> str:
    try:
        await request.app.state.redis.ping()
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


async def _kafka(writer: TransactionalWriter) -> str:
    try:
        await writer.check()
    except KafkaUnavailable as exc:
        return f"unreachable: {exc}"
    return "ok"

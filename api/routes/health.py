"""Liveness and readiness, without auth (load balancers and orchestrators call them), and the
sinks process's health for readers (it names endpoints and errors, so it needs a token)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Role, require
from api.errors import AUTHED, REDIS_DOWN
from api.kafka_writer import KafkaUnavailable, TransactionalWriter
from api.models import SinksHealth
from api.settings import ApiSettings
from api.sinks_health import read_sinks_health

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


@router.get(
    "/v1/health/sinks",
    response_model=SinksHealth,
    dependencies=[Depends(require(Role.READ))],
    summary="Exporter and feed counts of `genpulse sinks`, and whether they are current",
    responses={**AUTHED, **REDIS_DOWN},
)
async def sinks_health(request: Request) -> Any:
    settings: ApiSettings = request.app.state.settings
    return await read_sinks_health(
        request.app.state.redis,
        settings.key_prefix,
        time.time_ns() // 1_000_000,
        settings.sinks_stale_after_ms,
    )


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

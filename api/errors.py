"""One JSON error shape for every failure, and the handlers that produce it.

Every error body is `{"error": "<stable code>", "message": "<what to do>"}` (plus `details`
for request validation), so clients branch on `error` and people read `message`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from streams.slicing import UnsupportedSlice


class ErrorBody(BaseModel):
    error: str = Field(description="Stable machine-readable code.", examples=["unauthorized"])
    message: str = Field(
        description="What went wrong and what to do.",
        examples=["missing bearer token: send 'Authorization: Bearer <token>'"],
    )
    details: list[dict[str, Any]] | None = Field(
        None, description="Per-field problems, for invalid requests."
    )


class ApiError(Exception):
    """Raised anywhere in a request to answer `status` with an ErrorBody."""

    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers


def error_response(
    status: int, error: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": error, "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


Responses = dict[int | str, dict[str, Any]]
"""The shape FastAPI's `responses=` takes."""


def _describe(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


UNAUTHORIZED: Responses = {401: _describe("No token, or a token that is not configured.")}
FORBIDDEN: Responses = {403: _describe("The token is valid but lacks the role this route needs.")}
INVALID: Responses = {422: _describe("A parameter or the body is invalid; `details` says which.")}
REDIS_DOWN: Responses = {503: _describe("Redis (the worker's snapshots) is unreachable.")}
KAFKA_DOWN: Responses = {
    503: _describe(
        "Kafka is unreachable, or a topic is missing (`topic_missing`: the worker or "
        "`genpulse topics create` makes it); nothing of the request was written."
    )
}
AUTHED: Responses = {**UNAUTHORIZED, **FORBIDDEN, **INVALID}


def redis_unavailable(exc: Exception) -> ApiError:
    return ApiError(
        503,
        "redis_unavailable",
        f"Redis is unreachable ({type(exc).__name__}); the worker's snapshots cannot be read. "
        "Retry shortly: the API reconnects by itself.",
        headers={"Retry-After": "2"},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.message, exc.headers)

    async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
        err = redis_unavailable(exc)
        return error_response(err.status, err.error, err.message, err.headers)

    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)

    @app.exception_handler(UnsupportedSlice)
    async def _unsupported(_: Request, exc: UnsupportedSlice) -> JSONResponse:
        """A filter or group-by the worker's rows cannot answer exactly (the reader says why)."""
        return error_response(422, "unsupported_filter", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        where = ", ".join(".".join(str(p) for p in d["loc"]) for d in details) or "request"
        return error_response(422, "invalid_request", f"invalid {where}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
        )

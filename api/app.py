"""`create_app(settings)`: the FastAPI application, its routes and its long-lived clients.

The lifespan owns one Redis client (snapshots and pub/sub), one transactional Kafka
producer (ingest and control writes), one reader of the control topic and one update feed
for SSE. Redis or Kafka being down at start is not fatal: /readyz says so, routes answer
503, and everything reconnects by itself.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.auth import Role, TokenBook
from api.control_view import ControlView
from api.errors import install_error_handlers
from api.kafka_writer import TransactionalWriter
from api.live import UpdateFeed
from api.observability import AccessLog, ApiMetrics
from api.routes import budgets, collect, exports, health, metrics, otlp, prometheus, stream
from api.settings import ApiSettings
from api.snapshot_cache import ReaderProcess, SnapshotCache, redis_client, snapshot_reader
from api.web import routes as web
from producers.pricing import PriceTable
from streams.partial import Targets
from streams.reader import MetricsReader

DESCRIPTION = """\
Current metrics of the genpulse pipeline, read from the Redis snapshots the worker writes;
budgets and alert rules for admins; browser ingest; a live stream; Prometheus exposition.

Every route names the role it needs (see docs/api.md): send `Authorization: Bearer <token>`.
Errors are JSON: `{"error": "<code>", "message": "<what to do>"}`.
"""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()  # type: ignore[call-arg]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_client(settings)
        writer = TransactionalWriter(
            settings.kafka_bootstrap,
            settings.api_transactional_id
            or f"{settings.topic_prefix}.api.{socket.gethostname()}.{os.getpid()}",
            settings.api_kafka_timeout_s,
        )
        feed = UpdateFeed(redis, f"{settings.key_prefix}:updates")
        view = ControlView(
            settings.kafka_bootstrap, settings.topic("control"), settings.api_kafka_timeout_s
        )
        app.state.redis = redis
        targets = Targets(
            settings.target_ttfb_ms,
            settings.target_fcp_ms,
            settings.target_tti_ms,
            settings.target_complete_ms,
        )
        app.state.reader = MetricsReader(redis, settings.key_prefix, targets)
        reader_process = ReaderProcess(snapshot_reader, settings, targets)
        app.state.snapshots = SnapshotCache(reader_process, feed)
        app.state.writer = writer
        app.state.feed = feed
        app.state.control_view = view
        feed.start()
        await writer.start()
        try:
            yield
        finally:
            await feed.stop()
            await view.stop()
            await writer.stop()
            await reader_process.close()
            await redis.aclose()

    app = FastAPI(
        title="genpulse API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tokens = TokenBook(
        {
            Role.READ: settings.api_read_tokens,
            Role.ADMIN: settings.api_admin_tokens,
            Role.INGEST: settings.api_ingest_keys,
        }
    )
    app.state.api_metrics = api_metrics = ApiMetrics()
    app.state.prices = PriceTable.load(settings.price_overlay)
    install_error_handlers(app)
    for module in (health, metrics, budgets, exports, collect, otlp, stream, prometheus, web):
        app.include_router(module.router)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.api_cors_origins),
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-GenPulse-Key", "Last-Event-ID"],
        max_age=600,
    )
    app.add_middleware(AccessLog, metrics=api_metrics)
    return app

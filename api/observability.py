"""The API's own request metrics and its access log, which never records tokens or keys.

The access log writes method, path (never the query string, which may carry `?key=`),
status and duration; uvicorn's own access log is turned off by `genpulse api`.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("genpulse.api.access")


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.collected = Counter(
            "genpulse_api_collected_events",
            "Events received on /v1/collect, by outcome (accepted or rejected).",
            ["outcome"],
            registry=self.registry,
        )
        self.otlp_spans = Counter(
            "genpulse_api_otlp_spans",
            "Spans received on /v1/otlp/v1/traces, by outcome: accepted (model calls turned "
            "into events), rejected (model calls that could not be), not_a_model_call (GenAI "
            "agent/tool/workflow spans), not_genai.",
            ["outcome"],
            registry=self.registry,
        )
        self.otlp_metric_points = Counter(
            "genpulse_api_otlp_metric_points",
            "Data points received on /v1/otlp/v1/metrics (counted, not turned into events), "
            "by metric: the gen_ai.client.* names, else other.",
            ["metric"],
            registry=self.registry,
        )
        self.requests = Counter(
            "genpulse_api_requests",
            "HTTP requests answered, by route template and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "genpulse_api_request_duration_seconds",
            "Time to answer an HTTP request (until the response starts), by route template.",
            ["route"],
            registry=self.registry,
        )

    def count_collected(self, accepted: int, rejected: int) -> None:
        self.collected.labels("accepted").inc(accepted)
        self.collected.labels("rejected").inc(rejected)


class AccessLog:
    """ASGI middleware: one log line and one metric sample per request, without secrets."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                route = _route_of(scope)
                elapsed = time.perf_counter() - began
                self.metrics.requests.labels(route, str(status)).inc()
                self.metrics.latency.labels(route).observe(elapsed)
                access_log.info(
                    "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000
                )
            await send(message)

        await self.app(scope, receive, record_status)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"

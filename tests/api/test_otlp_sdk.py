"""The real OpenTelemetry SDK and its OTLP/HTTP exporters, configured as docs/integrations.md
says (base URL `<api>/v1/otlp`, the ingest key in OTEL_EXPORTER_OTLP_HEADERS, gzip), against
the API served by uvicorn: the exporters report success and the events reach Kafka."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from api.settings import ApiSettings
from tests.api.conftest import INGEST_KEY
from tests.api.kafka_read import read_topic
from tests.api.server import running_api

pytestmark = pytest.mark.integration


@pytest.fixture
def otlp_base(api_settings: ApiSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The running API, and the exporter variables set as an operator would set them."""
    with running_api(api_settings) as base:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"{base}/v1/otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{INGEST_KEY}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        yield base


def finished_spans() -> tuple[ReadableSpan, ...]:
    """Spans an app instrumented by hand would produce: a request span, two model calls."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "uvp-generator"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("uvp")
    with tracer.start_as_current_span("POST /generate", kind=SpanKind.SERVER):
        with tracer.start_as_current_span(
            "chat claude-sonnet-4-5",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 2400,
                "gen_ai.usage.output_tokens": 500,
                "gen_ai.usage.cache_read.input_tokens": 400,
                "gen_ai.conversation.id": "conv-1",
                "user.id": "alice",
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat claude-haiku-4-5",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-haiku-4-5",
                "error.type": "RateLimitError",
                "gen_ai.conversation.id": "conv-1",
            },
        ) as failed:
            failed.set_status(Status(StatusCode.ERROR, "429 rate_limit_error"))
    provider.shutdown()
    return memory.get_finished_spans()


async def test_the_sdk_exporter_delivers_genai_spans_and_a_resend_is_the_same_events(
    otlp_base: str, api_settings: ApiSettings
) -> None:
    spans = finished_spans()
    exporter = OTLPSpanExporter()
    assert exporter._endpoint == f"{otlp_base}/v1/otlp/v1/traces"
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # a retry after a lost answer
    exporter.shutdown()
    records = await read_topic(api_settings.kafka_bootstrap, api_settings.topic("events"), 4)
    events = [orjson.loads(r.value) for r in records]
    assert len(events) == 4 and len({e["event_id"] for e in events}) == 2
    by_type = {e["type"]: e for e in events}
    call, error = by_type["model_called"], by_type["error_occurred"]
    assert (call["session_id"], call["user_id"], call["service"]) == (
        "conv-1",
        "alice",
        "uvp-generator",
    )
    assert (call["data"]["input_tokens"], call["data"]["cache_read_tokens"]) == (2000, 400)
    assert call["data"]["cost_nanousd"] == 2000 * 3000 + 500 * 15000 + 400 * 300
    assert error["data"]["error_type"] == "rate_limit"
    assert all(r.key == b"conv-1" for r in records)


def test_the_sdk_metric_exporter_is_answered_with_success(otlp_base: str) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    usage = provider.get_meter("uvp").create_histogram("gen_ai.client.token.usage", unit="{token}")
    usage.record(1200, {"gen_ai.token.type": "input", "gen_ai.request.model": "claude-sonnet-4-5"})
    usage.record(300, {"gen_ai.token.type": "output", "gen_ai.request.model": "claude-sonnet-4-5"})
    data = reader.get_metrics_data()
    exporter = OTLPMetricExporter()
    assert exporter.export(data) is MetricExportResult.SUCCESS
    exporter.shutdown()
    provider.shutdown()


def test_a_wrong_key_fails_the_export_without_retries(
    otlp_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20not-our-key-at-all")
    exporter = OTLPSpanExporter(timeout=5)
    assert exporter.export(finished_spans()) is SpanExportResult.FAILURE
    exporter.shutdown()

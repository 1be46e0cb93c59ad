"""What the real third-party instrumentations emit maps to the right costs.

OpenLLMetry's `opentelemetry-instrumentation-anthropic` and OpenInference's
`openinference-instrumentation-anthropic`, each around the real `anthropic` client talking
to our loopback Messages API; their spans are encoded by the OTLP exporter's own encoder
(the bytes an exporter sends), decoded and mapped as the API does. Fast, no Kafka: the
HTTP and worker path is tests/api/test_otlp_e2e.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from openinference.instrumentation.anthropic import (
    AnthropicInstrumentor as OpenInferenceInstrumentor,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as OpenLLMetryInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.otlp.decode import Encoding, parse_traces
from api.otlp.genai import map_traces
from producers.pricing import PriceTable
from tests.anthropic_server import MessagesServer, Reply, Usage

ASK: dict[str, Any] = {"max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}
USAGE = Usage(1000, 200, cache_write_5m_tokens=500, cache_read_tokens=3000)
# claude-sonnet-4-5's list price in nano-dollars per token: input, output, cache write, read
SONNET_COST = 1000 * 3000 + 200 * 15000 + 500 * 3750 + 3000 * 300


def spans_of(instrumentor: Any, calls: Callable[[anthropic.Anthropic], None]) -> list[Any]:
    """The instrumentation's spans, as the API maps them after an OTLP round trip."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "uvp"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    # OpenInference declares anthropic>=1.8 but instruments the project's 0.x client as is
    instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
    try:
        with MessagesServer() as server:
            server.script(Reply(usage=USAGE), Reply(usage=Usage(700, 90)))
            calls(anthropic.Anthropic(base_url=server.url, api_key="test-key", max_retries=0))
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    finished: tuple[ReadableSpan, ...] = memory.get_finished_spans()
    wire = encode_spans(finished).SerializeToString()
    mapping = map_traces(parse_traces(wire, Encoding.PROTOBUF), PriceTable())
    assert mapping.spans == len(finished) and not mapping.not_genai
    return [call.events[0]["data"] for call in mapping.calls]


def plain_then_streamed(client: anthropic.Anthropic) -> None:
    client.messages.create(model="claude-sonnet-4-5", **ASK)
    for _ in client.messages.create(model="claude-haiku-4-5", stream=True, **ASK):
        pass


@pytest.mark.parametrize(
    "instrumentor",
    [OpenLLMetryInstrumentor, OpenInferenceInstrumentor],
    ids=["openllmetry", "openinference"],
)
def test_a_plain_call_with_cache_reads_and_writes_costs_the_list_price(instrumentor: Any) -> None:
    plain, streamed = spans_of(instrumentor(), plain_then_streamed)
    assert (plain["input_tokens"], plain["output_tokens"]) == (1000, 200)
    assert (plain["cache_write_tokens"], plain["cache_read_tokens"]) == (500, 3000)
    assert plain["cost_nanousd"] == SONNET_COST and plain["provider"] == "anthropic"
    if instrumentor is OpenLLMetryInstrumentor:  # one output token too many: see test_otlp_e2e
        assert (streamed["input_tokens"], streamed["output_tokens"]) == (700, 91)
    else:  # OpenInference 3.1 records no usage on stream=True with the 0.x client
        assert streamed["priced"] is False and streamed["usage_reported"] is False

"""pulse.instrument_anthropic(): the real anthropic client against our loopback Messages API.

Each test drives the real client (sync or async) through a scripted server and checks what
the SDK reported (its local view of the events it queued for Kafka) and that the caller got
exactly what an uninstrumented client gets.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.lib.streaming import AsyncMessageStream, MessageStream
from anthropic.types import Message

from producers import GenPulse
from producers.integrations.anthropic import Reporter, instrument
from tests.anthropic_server import (
    BreakStream,
    MessagesServer,
    Overloaded,
    RateLimited,
    Reply,
    ServerError,
    StreamError,
    Usage,
)
from tests.integrations.conftest import sent

pytestmark = pytest.mark.integration

MODEL = "claude-haiku-4-5"
ASK: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Write a value proposition."}],
}
USAGE = Usage(
    input_tokens=1200,
    output_tokens=340,
    cache_write_5m_tokens=300,
    cache_write_1h_tokens=500,
    cache_read_tokens=800,
)


def sync_client(server: MessagesServer, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="test-key", **options)


def async_client(server: MessagesServer, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.url, api_key="test-key", **options)


def writes(pulse: GenPulse, usage: Usage) -> dict[str, int]:
    """The cache-write fields record_model_call gets: 1-hour ones apart when it prices them."""
    if Reporter(print, pulse.costs.record_model_call, print).splits_1h:
        return {"cache_write_tokens": usage.cache_write_5m_tokens}
    return {"cache_write_tokens": usage.cache_write_5m_tokens + usage.cache_write_1h_tokens}


def only(pulse: GenPulse, event_type: str) -> dict[str, Any]:
    found = sent(pulse, event_type)
    assert len(found) == 1, (event_type, sent(pulse))
    return found[0]


def test_create_reports_one_model_call_with_the_response_usage(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    messages_server.script(Reply(text="Ship faster.", usage=USAGE, model="claude-haiku-4-5-2025"))
    with pulse.session("sess-1", user_id="user-1"):
        message = client.messages.create(**ASK)
    assert type(message) is Message and message.content[0].text == "Ship faster."  # type: ignore[union-attr]
    call = only(pulse, "model_called")
    assert call["session_id"] == "sess-1" and call["user_id"] == "user-1"
    data = call["data"]
    assert data["model"] == "claude-haiku-4-5-2025"  # the model that answered
    assert (data["input_tokens"], data["output_tokens"], data["cache_read_tokens"]) == (
        1200,
        340,
        800,
    )
    assert {"cache_write_tokens": data["cache_write_tokens"]} == writes(pulse, USAGE)
    assert data["priced"] is True and data["cost_nanousd"] > 0 and data["duration_ms"] > 0
    assert sent(pulse) == [call]  # no stream, error or retry events for a plain call


async def test_async_create_and_stream_are_reported_per_task_session(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(async_client(messages_server))

    async def one(session: str) -> None:
        with pulse.session(session, user_id=f"user-{session}"):
            message = await client.messages.create(**ASK)
            assert type(message) is Message
            async with client.messages.stream(**ASK) as stream:
                assert type(stream) is AsyncMessageStream
                await stream.get_final_message()

    await asyncio.gather(*(one(f"s{i}") for i in range(4)))
    calls = sent(pulse, "model_called")
    assert len(calls) == 8
    assert sorted(c["session_id"] for c in calls) == sorted([f"s{i}" for i in range(4)] * 2)
    assert all(c["user_id"] == f"user-{c['session_id']}" for c in calls)
    completed = sent(pulse, "stream_completed")
    assert len(completed) == 4 and {c["data"]["outcome"] for c in completed} == {"completed"}


def test_create_stream_true_reports_stream_timings_and_charges_the_final_usage(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    messages_server.script(Reply(text="abcdef", pieces=3, usage=USAGE, event_gap_s=0.05))
    stream = client.messages.create(stream=True, **ASK)
    assert type(stream) is anthropic.Stream
    types = [event.type for event in stream]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    started, completed = only(pulse, "stream_started"), only(pulse, "stream_completed")
    timing = completed["data"]
    assert timing["outcome"] == "completed" and timing["stop_reason"] == "end_turn"
    assert started["data"]["time_to_first_byte_ms"] == timing["time_to_first_byte_ms"]
    assert 0 < timing["time_to_first_byte_ms"] < timing["time_to_first_content_ms"]
    assert timing["time_to_first_content_ms"] + 90 < timing["duration_ms"]  # 2 gaps after
    data = only(pulse, "model_called")["data"]
    assert (data["input_tokens"], data["output_tokens"]) == (1200, 340)  # message_delta's count
    assert data["cache_read_tokens"] == 800
    assert {"cache_write_tokens": data["cache_write_tokens"]} == writes(pulse, USAGE)


def test_messages_stream_helper_is_reported_once(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    messages_server.script(Reply(text="Grow revenue.", usage=USAGE))
    with pulse.session("sess-stream"), client.messages.stream(**ASK) as stream:
        assert type(stream) is MessageStream
        assert stream.get_final_text() == "Grow revenue."
    call = only(pulse, "model_called")
    assert call["session_id"] == "sess-stream" and call["data"]["output_tokens"] == 340
    assert only(pulse, "stream_completed")["data"]["outcome"] == "completed"


def test_an_abandoned_stream_is_charged_for_what_the_server_reported(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    messages_server.script(Reply(usage=USAGE, pieces=5), Reply(usage=USAGE, pieces=5))
    with client.messages.create(stream=True, **ASK) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break  # the caller stops reading; the with block closes the response
    for event in client.messages.create(stream=True, **ASK):
        if event.type == "content_block_delta":
            break  # abandoned without close: charged when the stream is collected
    gc.collect()
    calls = sent(pulse, "model_called")
    assert len(calls) == 2
    for call in calls:  # message_start's usage: all input, the first output token
        assert (call["data"]["input_tokens"], call["data"]["output_tokens"]) == (1200, 1)
        assert call["data"]["cache_read_tokens"] == 800
    outcomes = [e["data"]["outcome"] for e in sent(pulse, "stream_completed")]
    assert outcomes == ["abandoned", "abandoned"]
    assert sent(pulse, "error_occurred") == []


@pytest.mark.parametrize("after_deltas", [0, 2])  # cut before the first content, and after
def test_a_stream_cut_mid_way_is_charged_and_reported_as_an_error(
    pulse: GenPulse, messages_server: MessagesServer, after_deltas: int
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    cut = BreakStream(Reply(usage=USAGE), after_deltas=after_deltas, reported_output_tokens=9)
    messages_server.script(cut)
    with pytest.raises(httpx.RemoteProtocolError):  # what the bare client raises too
        for _ in client.messages.create(stream=True, **ASK):
            pass
    data = only(pulse, "model_called")["data"]
    assert (data["input_tokens"], data["output_tokens"]) == (1200, 9)
    assert only(pulse, "error_occurred")["data"]["error_type"] == "api_error"
    assert only(pulse, "stream_completed")["data"]["outcome"] == "error"


@pytest.mark.parametrize("after_deltas", [0, 2])
async def test_an_async_stream_cut_mid_way_is_charged_and_reported_as_an_error(
    pulse: GenPulse, messages_server: MessagesServer, after_deltas: int
) -> None:
    client = pulse.instrument_anthropic(async_client(messages_server))
    cut = BreakStream(Reply(usage=USAGE), after_deltas=after_deltas, reported_output_tokens=9)
    messages_server.script(cut)
    with pytest.raises(httpx.RemoteProtocolError):
        async for _ in await client.messages.create(stream=True, **ASK):
            pass
    data = only(pulse, "model_called")["data"]
    assert (data["input_tokens"], data["output_tokens"]) == (1200, 9)
    assert only(pulse, "error_occurred")["data"]["error_type"] == "api_error"
    assert only(pulse, "stream_completed")["data"]["outcome"] == "error"


async def test_async_calls_cancelled_mid_way_cancel_the_read_and_report_what_happened(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    """A task cancelled while the client waits (for the answer, then for a stream's next
    event) is cancelled there, promptly, as a bare client's is; the abandoned stream is still
    charged for what the server reported, and the next call is reported as usual."""
    client = pulse.instrument_anthropic(async_client(messages_server, max_retries=0))
    messages_server.script(
        Reply(usage=USAGE, first_byte_delay_s=5.0),
        Reply(usage=USAGE, pieces=3, event_gap_s=5.0),
        Reply(usage=USAGE),
    )
    waiting = asyncio.create_task(client.messages.create(**ASK))
    await asyncio.sleep(0.3)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    reading: list[str] = []

    async def read() -> None:
        async with client.messages.stream(**ASK) as stream:
            async for event in stream:
                reading.append(event.type)

    streaming = asyncio.create_task(read())
    loop = asyncio.get_running_loop()
    began = loop.time()
    while "message_start" not in reading and loop.time() - began < 4.0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert "message_start" in reading and "content_block_delta" not in reading
    cancelled = loop.time()
    streaming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await streaming
    assert loop.time() - cancelled < 1.0  # at once, not at the next event (5 s away)
    await client.messages.create(**ASK)
    calls = sent(pulse, "model_called")
    assert len(calls) == 2  # the abandoned stream (message_start's usage) and the last call
    assert (calls[0]["data"]["input_tokens"], calls[0]["data"]["output_tokens"]) == (1200, 1)
    assert calls[1]["data"]["output_tokens"] == 340
    assert [e["data"]["outcome"] for e in sent(pulse, "stream_completed")] == ["abandoned"]
    assert sent(pulse, "error_occurred") == []  # a cancellation is not an API error


def test_an_error_event_in_a_stream_is_reported_with_its_type(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    messages_server.script(StreamError(Reply(usage=USAGE), error_type="overloaded_error"))
    with pytest.raises(anthropic.APIStatusError), client.messages.stream(**ASK) as stream:
        stream.until_done()
    assert only(pulse, "error_occurred")["data"]["error_type"] == "overloaded"
    assert only(pulse, "model_called")["data"]["input_tokens"] == 1200


def test_429_twice_then_success_reports_each_error_and_retry(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    messages_server.script(RateLimited(), RateLimited(), Reply(usage=USAGE))
    with pulse.session("sess-retry"):
        client.messages.create(**ASK)
    assert [r.retry_count for r in messages_server.requests] == [0, 1, 2]  # the client's loop
    errors = sent(pulse, "error_occurred")
    assert [(e["data"]["error_type"], e["data"]["status_code"]) for e in errors] == [
        ("rate_limit", 429),
        ("rate_limit", 429),
    ]
    attempted = sent(pulse, "retry_attempted")
    assert [a["data"]["attempt"] for a in attempted] == [1, 2]
    assert {a["data"]["reason"] for a in attempted} == {"rate_limit"}
    assert only(pulse, "retry_succeeded")["data"]["attempt"] == 2
    assert sent(pulse, "retry_failed") == []
    assert only(pulse, "model_called")["data"]["input_tokens"] == 1200
    assert {e["session_id"] for e in sent(pulse)} == {"sess-retry"}


def test_a_stream_served_after_a_429_reports_the_retry_and_the_stream(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    messages_server.script(RateLimited(), Reply(usage=USAGE))
    with pulse.session("sess-stream-retry"):
        assert [e.type for e in client.messages.create(stream=True, **ASK)][-1] == "message_stop"
    assert only(pulse, "error_occurred")["data"]["status_code"] == 429
    assert only(pulse, "retry_attempted")["data"]["attempt"] == 1
    assert only(pulse, "retry_succeeded")["data"]["attempt"] == 1
    assert only(pulse, "stream_completed")["data"]["outcome"] == "completed"
    assert only(pulse, "model_called")["data"]["output_tokens"] == 340
    assert {e["session_id"] for e in sent(pulse)} == {"sess-stream-retry"}
    assert {e["data"]["model"] for e in sent(pulse)} == {MODEL}


def test_a_failed_beta_call_leaves_nothing_for_the_next_call(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server, max_retries=1))
    messages_server.script(RateLimited(), Reply(usage=USAGE), Reply(usage=USAGE))
    client.beta.messages.create(**ASK)  # not instrumented; its retry loop is the client's
    client.messages.create(**ASK)
    assert sent(pulse, "error_occurred", "retry_attempted", "retry_succeeded") == []
    assert len(sent(pulse, "model_called")) == 1


def test_529_without_retries_left_reports_overloaded(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server, max_retries=0))
    messages_server.script(Overloaded())
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(**ASK)
    error = only(pulse, "error_occurred")["data"]
    assert (error["error_type"], error["status_code"]) == ("overloaded", 529)
    assert sent(pulse, "model_called", "retry_attempted", "retry_failed") == []


def test_500_exhausting_the_retries_reports_retry_failed(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(sync_client(messages_server))
    messages_server.script(*(ServerError(retry_after="0.01") for _ in range(3)))
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(**ASK)
    assert len(messages_server.requests) == 3
    assert [e["data"]["error_type"] for e in sent(pulse, "error_occurred")] == ["api_error"] * 3
    assert len(sent(pulse, "retry_attempted")) == 2
    assert only(pulse, "retry_failed")["data"] == {
        "attempt": 2,
        "attempts": 3,
        "error_type": "api_error",
        "provider": "anthropic",
        "model": MODEL,
    }
    assert sent(pulse, "model_called", "retry_succeeded") == []


async def test_a_timed_out_attempt_then_success_in_an_option_copy(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = pulse.instrument_anthropic(async_client(messages_server))
    messages_server.script(Reply(first_byte_delay_s=1.0), Reply(usage=USAGE))
    await client.with_options(timeout=0.3, max_retries=1).messages.create(**ASK)
    error = only(pulse, "error_occurred")["data"]
    assert error["error_type"] == "timeout" and "status_code" not in error
    assert only(pulse, "retry_attempted")["data"]["reason"] == "timeout"
    assert only(pulse, "retry_succeeded")["data"]["attempt"] == 1
    assert only(pulse, "model_called")["data"]["duration_ms"] >= 300


def outcome(client: anthropic.Anthropic, script: Any, server: MessagesServer) -> Any:
    """What a caller gets for one scenario: the result's shape or the exception's type."""
    server.script(*script)
    try:
        if script and isinstance(script[0], BreakStream):
            return [e.type for e in client.messages.create(stream=True, **ASK)]
        message = client.messages.create(**ASK)
        return (type(message), message.model_dump(exclude={"id"}))
    except Exception as exc:
        return type(exc), getattr(exc, "status_code", None)


def test_the_caller_gets_exactly_what_the_bare_client_gives(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    scenarios: list[list[Any]] = [
        [Reply(usage=USAGE)],
        [RateLimited(), Reply()],
        [Overloaded(retry_after="0.01")] * 3,
        [BreakStream(after_deltas=1)],
    ]
    bare = sync_client(messages_server)
    watched = pulse.instrument_anthropic(sync_client(messages_server))
    for script in scenarios:
        assert outcome(watched, script, messages_server) == outcome(bare, script, messages_server)
    assert pulse.stats().invalid == {}


def test_a_failing_report_never_reaches_the_caller(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the reporting side is broken")

    problems: list[str] = []
    reporter = Reporter(broken, broken, lambda kind, detail: problems.append(kind))
    client = instrument(sync_client(messages_server), reporter)
    messages_server.script(RateLimited(), Reply(usage=USAGE))
    assert client.messages.create(**ASK).usage.input_tokens == 1200
    assert [e.type for e in client.messages.create(stream=True, **ASK)][-1] == "message_stop"
    with client.messages.stream(**ASK) as stream:
        assert stream.get_final_text()
    assert problems and set(problems) == {"internal_error"}


def test_a_failing_hand_over_never_reaches_the_caller(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    def refuse(job: tuple[Any, ...]) -> None:
        raise RuntimeError("the deferred queue is broken")

    problems: list[str] = []
    reporter = Reporter(print, print, lambda kind, detail: problems.append(kind), refuse)
    client = instrument(sync_client(messages_server), reporter)
    assert client.messages.create(**ASK).usage.input_tokens > 0
    assert [e.type for e in client.messages.create(stream=True, **ASK)][-1] == "message_stop"
    assert problems == ["internal_error"] * 3  # the answer, the stream's start and its end


def test_instrumenting_twice_reports_once_and_other_types_are_refused(
    pulse: GenPulse, messages_server: MessagesServer
) -> None:
    client = sync_client(messages_server)
    assert pulse.instrument_anthropic(client) is client
    pulse.instrument_anthropic(client)
    client.messages.create(**ASK)
    assert len(sent(pulse, "model_called")) == 1
    with pytest.raises(TypeError, match=r"anthropic\.Anthropic"):
        pulse.instrument_anthropic(object())  # type: ignore[type-var]

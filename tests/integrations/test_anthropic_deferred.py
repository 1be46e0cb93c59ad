"""The caller's thread only queues raw references; the SDK's sender thread builds the events.

What reaches Kafka must be what the call did, stamped when it happened, with nobody
calling flush(), stats() or get_events() to push it along.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import pytest

from producers import GenPulse
from producers.settings import GenPulseSettings
from tests.anthropic_server import MessagesServer, Reply, Usage
from tests.producers.kafka_read import read_topic

pytestmark = pytest.mark.integration

ASK = {
    "model": "claude-haiku-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Write a value proposition."}],
}


@pytest.fixture
def quiet_pulse(settings: GenPulseSettings) -> Iterator[GenPulse]:
    """No local view (get_events() would run the deferred reports on this thread)."""
    client = GenPulse(
        service="anthropic-deferred",
        bootstrap_servers=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        follow_budget_state=False,
        flush_interval_s=0.2,
    )
    yield client
    client.close(timeout=5.0)


def test_the_sender_delivers_deferred_reports_stamped_at_the_call(
    quiet_pulse: GenPulse, messages_server: MessagesServer, settings: GenPulseSettings
) -> None:
    client = quiet_pulse.instrument_anthropic(
        anthropic.Anthropic(base_url=messages_server.url, api_key="test-key")
    )
    messages_server.script(Reply(usage=Usage(700, 90)), Reply(usage=Usage(800, 60)))
    began_ms = time.time_ns() // 1_000_000
    with quiet_pulse.session("sess-deferred", user_id="user-deferred"):
        client.messages.create(**ASK)
        for _ in client.messages.create(stream=True, **ASK):
            pass
    ended_ms = time.time_ns() // 1_000_000 + 1
    time.sleep(1.0)  # later than the calls: a stamp taken when the sender builds would show
    received = read_topic(settings.kafka_bootstrap, quiet_pulse.settings.topic("events"), 4)
    events = [r.value for r in received]
    assert [e["type"] for e in events] == [
        "model_called",
        "stream_started",
        "model_called",
        "stream_completed",
    ]
    assert {(e["session_id"], e["user_id"]) for e in events} == {("sess-deferred", "user-deferred")}
    assert all(began_ms <= e["timestamp"] <= ended_ms for e in events), events
    plain, streamed = events[0]["data"], events[2]["data"]
    assert (plain["input_tokens"], plain["output_tokens"], plain["priced"]) == (700, 90, True)
    assert (streamed["input_tokens"], streamed["output_tokens"]) == (800, 60)
    assert events[3]["data"]["outcome"] == "completed"

"""The real anthropic client against our loopback Messages API, reporting to real Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from producers import GenPulse
from producers.integrations import anthropic_streams
from producers.settings import GenPulseSettings
from tests.anthropic_server import MessagesServer


@pytest.fixture(
    autouse=True, params=["c", "python"] if anthropic_streams.c_extension() else ["python"]
)
def anthropic_paths(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test with the C caller's-thread paths (when built) and with the Python ones."""
    was_c = anthropic_streams.c_extension() is not None
    anthropic_streams.use_c(request.param == "c")
    yield request.param
    anthropic_streams.use_c(was_c)


@pytest.fixture
def messages_server() -> Iterator[MessagesServer]:
    with MessagesServer() as server:
        yield server


@pytest.fixture
def pulse(settings: GenPulseSettings) -> Iterator[GenPulse]:
    """A GenPulse on this test's topics that keeps what it sends in its local view."""
    client = GenPulse(
        service="anthropic-test",
        bootstrap_servers=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        follow_budget_state=False,
        local_view_size=10_000,
        shutdown_timeout_s=5.0,
    )
    yield client
    client.close(timeout=5.0)


def sent(pulse: GenPulse, *types: str) -> list[dict[str, Any]]:
    """The events this client reported so far, optionally only of some types."""
    return [e for e in pulse.events.get_events() if not types or e["type"] in types]

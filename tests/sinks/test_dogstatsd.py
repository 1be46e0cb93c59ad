"""Events on Kafka reach a local DogStatsD listener as exact datagrams (name:value|type|#tags)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

from producers.events import EventType
from producers.metric_batch import encode_metric_batch
from streams.sinks import SinkSettings
from tests.sinks.endpoints import UdpListener, wait_until
from tests.sinks.harness import produce, produce_events, produce_json, running
from tests.sinks.test_payloads import batch_of
from tests.unit.test_contract import make_event

BUDGET_STATE = {
    "v": 1,
    "scope": "model:opus",
    "period": "2026-11-26",
    "budget_nanousd": 100_000_000_000,
    "spend_nanousd": 51_200_000_000,
    "budget_usd": "100",
    "spend_usd": "51.2",
    "remaining_usd": "48.8",
    "percent_used": 51.2,
    "state": "warning",
    "updated_ms": 1_764_130_000_000,
}


async def test_events_become_exact_dogstatsd_datagrams(
    sink_settings: Callable[..., SinkSettings], udp: UdpListener
) -> None:
    settings = sink_settings(dogstatsd_enabled=True, dogstatsd_port=udp.port)
    events = [
        make_event(EventType.PHASE_COMPLETED, data={"phase": "analysis", "duration_ms": 812.5}),
        make_event(EventType.GENERATION_COMPLETED, data={"duration_ms": 4200}),
        make_event(EventType.FIRST_BYTE, data={"elapsed_ms": 180}),
        make_event(EventType.FIRST_CONTENT, data={"elapsed_ms": 350.25}),
        make_event(EventType.INTERACTIVE, data={"elapsed_ms": 900}),
        make_event(
            EventType.MODEL_CALLED,
            data={
                "model": "claude-sonnet",
                "tier": "sonnet",
                "input_tokens": 1000,
                "output_tokens": 200,
                "cost_nanousd": 6_000_000,
            },
        ),
        make_event(EventType.CACHE_HIT, data={}),
        make_event(EventType.ERROR_OCCURRED, data={"error_type": "RateLimit"}),
    ]
    base = "service:uvp-generator,env:test"
    model = f"{base},model:claude-sonnet,tier:sonnet"
    expected = [
        f"genpulse.phase.duration:812.5|d|#{base},phase:analysis",
        f"genpulse.generation.count:1|c|#{base},status:completed",
        f"genpulse.generation.duration:4200|d|#{base}",
        f"genpulse.time_to_complete:4200|d|#{base}",
        f"genpulse.time_to_first_byte:180|d|#{base}",
        f"genpulse.time_to_first_content:350.25|d|#{base}",
        f"genpulse.time_to_interactive:900|d|#{base}",
        f"genpulse.model.calls:1|c|#{model}",
        f"genpulse.model.tokens:1000|c|#{model},kind:input",
        f"genpulse.model.tokens:200|c|#{model},kind:output",
        f"genpulse.model.cost:0.006|c|#{model}",
        f"genpulse.cache.lookups:1|c|#{base},result:hit",
        f"genpulse.errors:1|c|#{base},error_type:ratelimit",
        "genpulse.budget.percent_used:51.2|g|#env:test,scope:model:opus",
        "genpulse.budget.spend:51.2|g|#env:test,scope:model:opus",
    ]
    async with running(settings):
        await produce_events(settings, events)
        await produce_json(settings, "budget-state", [BUDGET_STATE])
        await wait_until(
            lambda: len(udp.datagrams) >= len(expected), what=f"{len(expected)} datagrams"
        )
    lines = [line for d in udp.datagrams for line in d.splitlines()]
    assert sorted(lines) == sorted(expected)
    # per-event order is kept (one partition, one outbox)
    assert [x for x in lines if "budget" not in x] == [x for x in expected if "budget" not in x]


async def test_dogstatsd_over_a_unix_socket(
    sink_settings: Callable[..., SinkSettings], tmp_path: Path
) -> None:
    path = tmp_path / "dsd.socket"
    received: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as agent:
        agent.bind(str(path))
        agent.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.add_reader(agent.fileno(), lambda: received.append(agent.recv(65536).decode()))
        try:
            settings = sink_settings(dogstatsd_enabled=True, dogstatsd_socket=str(path))
            async with running(settings):
                event = make_event(EventType.FIRST_BYTE, data={"elapsed_ms": 42})
                await produce_events(settings, [event])
                await wait_until(lambda: received, what="a datagram on the socket")
        finally:
            loop.remove_reader(agent.fileno())
    assert received == ["genpulse.time_to_first_byte:42|d|#service:uvp-generator,env:test\n"]


async def test_sdk_metric_batches_become_one_distribution_value_per_observation(
    sink_settings: Callable[..., SinkSettings], udp: UdpListener
) -> None:
    settings = sink_settings(dogstatsd_enabled=True, dogstatsd_port=udp.port)
    batch = batch_of([("phase_duration_ms", {"phase": "analysis"}, [812.5, 812.5, 100.0])])
    async with running(settings):
        await produce(
            settings.kafka_bootstrap,
            settings.topic("metrics"),
            [(b"uvp", encode_metric_batch(batch))],
        )
        await wait_until(lambda: len(udp.datagrams) >= 3, what="3 datagrams")
    tags = "#service:uvp,env:test,phase:analysis"  # values: the sketch bins' (within 1 %)
    assert sorted(udp.datagrams) == [
        f"genpulse.phase.duration:100.495|d|{tags}\n",
        f"genpulse.phase.duration:804.461|d|{tags}\n",
        f"genpulse.phase.duration:804.461|d|{tags}\n",
    ]

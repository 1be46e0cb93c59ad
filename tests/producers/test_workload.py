"""Demo traffic: reproducible per seed, covers the vocabulary, arrives complete and valid."""

from __future__ import annotations

import uuid
from collections import Counter

import orjson

from genpulse.demo import Workload, drive, event_type, sends_event
from genpulse.demo.workload import ModelCall, Track
from producers.contract import decode_event, event_from_object
from producers.pricing import PriceTable
from producers.settings import GenPulseSettings
from tests.producers.conftest import ClientFactory
from tests.producers.kafka_read import duplicates, read_topic

EXPECTED_TYPES = {
    "generation_started",
    "generation_completed",
    "generation_failed",
    "generation_canceled",
    "phase_started",
    "phase_completed",
    "phase_failed",
    "cache_hit",
    "cache_miss",
    "uvp_approved",
    "uvp_edited",
    "uvp_regenerated",
    "model_upgraded",
    "content_copied",
    "content_exported",
    "error_occurred",
    "retry_attempted",
    "retry_succeeded",
    "retry_failed",
    "fallback_triggered",
    "circuit_breaker_opened",
    "circuit_breaker_half_opened",
    "circuit_breaker_closed",
    "model_called",
    "quality_scored",
    "satisfaction_rated",
    "nps_rated",
    "queue_depth_sampled",
}


def test_same_seed_same_actions_other_seed_other_actions() -> None:
    assert list(Workload(7).actions(300)) == list(Workload(7).actions(300))
    assert list(Workload(7).actions(50)) != list(Workload(8).actions(50))


def test_sessions_cover_the_vocabulary_with_valid_data() -> None:
    actions = list(Workload(3).actions(3000))
    tracked = [a for a in actions if isinstance(a, Track)]
    for action in tracked:  # the typed data of every tracked event passes the contract
        event_from_object(
            {
                "type": action.event_type,
                "event_id": uuid.uuid4().hex,
                "timestamp": 1_764_130_000_000,
                "session_id": action.session_id,
                "user_id": action.user_id,
                "service": "demo",
                "data": action.data or {},
            }
        )
    assert {event_type(a) for a in actions} == EXPECTED_TYPES | {None}
    tiers = Counter(PriceTable().tier_for(a.model) for a in actions if isinstance(a, ModelCall))
    assert set(tiers) == {"haiku", "sonnet", "opus"}
    calls = [a for a in actions if isinstance(a, ModelCall)]
    assert any(a.cache_read_tokens for a in calls) and any(a.cache_write_tokens for a in calls)
    users = {a.user_id for a in tracked if a.user_id}
    assert 20 < len(users) <= 200


def test_driven_workload_arrives_complete_with_exact_costs(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    client = make_client()
    result = drive(client, seed=5, sessions=200)
    assert client.flush(timeout=60)
    actions = list(Workload(5).actions(200))
    assert result.events == sum(1 for a in actions if sends_event(a))

    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), result.events)
    assert duplicates(received) == {} and len(received) == result.events
    events = [decode_event(orjson.dumps(r.value)) for r in received]
    calls = [e for e in events if e.type.value == "model_called"]
    spent = sum(e.data["cost_nanousd"] for e in calls)
    table = PriceTable()
    expected = sum(
        table.price_call(  # type: ignore[misc]
            a.model,
            input_tokens=a.input_tokens,
            output_tokens=a.output_tokens,
            cache_write_tokens=a.cache_write_tokens,
            cache_read_tokens=a.cache_read_tokens,
            at_ms=calls[0].timestamp,
        ).cost_nanousd
        for a in actions
        if isinstance(a, ModelCall)
    )
    assert spent == expected
    assert client.costs.get_costs()["total_cost_nanousd"] == expected


def test_demo_traffic_command_sends_what_it_reports(settings: GenPulseSettings) -> None:
    import re

    from typer.testing import CliRunner

    from genpulse.cli import app

    env = {
        "GENPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GENPULSE_TOPIC_PREFIX": settings.topic_prefix,
        "GENPULSE_FOLLOW_BUDGET_STATE": "false",
    }
    args = ["demo", "traffic", "--rate", "300", "--duration", "2", "--seed", "9"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    found = re.search(r"(\d+) sessions, (\d+) events.*acknowledged (\d+) events", result.output)
    assert found, result.output
    events = int(found.group(2))
    assert int(found.group(3)) == events and 300 <= events <= 700  # ~300/s for 2 s
    assert "dropped 0" in result.output
    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=events)
    assert len(received) == events

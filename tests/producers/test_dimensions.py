"""The SDK's environment and tags: on the wire per client and per call; a call over the
limits is dropped and counted in stats().invalid, a client over them refused at once."""

from __future__ import annotations

import pytest

from producers.settings import GenPulseSettings
from tests.producers.conftest import ClientFactory
from tests.producers.kafka_read import read_topic


def test_client_and_call_tags_reach_the_wire(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    client = make_client(environment="prod", tags={"team": "growth"})
    client.events.track("generation_started", session_id="s1")
    client.costs.record_model_call(
        "claude-3-5-haiku-20241022", 10, 10, session_id="s2", tags={"feature": "uvp"}
    )
    client.events.track("generation_started", session_id="s3", tags={"team": "core"})
    too_many = {f"k{i}": "v" for i in range(10)}  # 10 + the client's 1 = 11
    client.events.track("generation_started", session_id="s4", tags=too_many)
    client.events.track("generation_started", session_id="s5", tags={"Bad Key": "x"})
    assert client.flush(timeout=30)
    got = {r.value["session_id"]: r.value for r in
           read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=3)}  # fmt: skip
    assert sorted(got) == ["s1", "s2", "s3"]
    assert all(e["environment"] == "prod" for e in got.values())
    assert got["s1"]["tags"] == {"team": "growth"}
    assert got["s2"]["tags"] == {"team": "growth", "feature": "uvp"}
    assert got["s3"]["tags"] == {"team": "core"}
    assert client.stats().invalid == {"invalid_tags": 2}


def test_a_client_over_the_limits_is_refused(make_client: ClientFactory) -> None:
    with pytest.raises(ValueError, match="tag key"):
        make_client(tags={"Team": "growth"})
    with pytest.raises(ValueError, match="environment"):
        make_client(environment="")

"""The topology definition and its comparison with a broker's state (pure, no Kafka)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.settings import WorkerSettings
from streams.topology import (
    ERROR,
    WARNING,
    Observed,
    TopicSpec,
    creation_partitions,
    errors,
    problems,
    topology,
)

SETTINGS = WorkerSettings(topic_prefix="p", topic_partitions=6)


def matching(specs: list[TopicSpec]) -> dict[str, Observed]:
    """What a broker holds right after `genpulse topics create`."""
    return {
        s.name: Observed(
            s.partitions,
            s.replication,
            {
                "cleanup.policy": s.cleanup_policy,
                "min.insync.replicas": str(s.min_insync),
                "retention.ms": str(s.retention_ms or 604800000),
            },
        )
        for s in specs
    }


def test_every_topic_the_code_uses_is_defined_once() -> None:
    names = [s.name for s in topology(SETTINGS)]
    assert len(names) == len(set(names)) == 11
    for name in ("events", "metrics", "control", "alerts", "budget-state", "dlq"):
        assert SETTINGS.topic(name) in names
    changelogs = ("events-changelog", "metrics-changelog", "dlq-changelog")
    for name in ("rollup", "controller-changelog", *changelogs):
        assert SETTINGS.internal_topic(name) in names


def test_changelogs_follow_their_sources_and_are_compacted() -> None:
    specs = {s.name: s for s in topology(SETTINGS)}
    for kind in ("events", "metrics"):
        changelog = specs[SETTINGS.internal_topic(f"{kind}-changelog")]
        assert changelog.follows == SETTINGS.topic(kind) and changelog.compact
    assert specs["p.control"].compact and specs["p.budget-state"].compact
    assert not specs["p.events"].compact and specs["p.events"].retention_ms == 7 * 86_400_000


def test_replication_and_min_insync_come_from_the_settings() -> None:
    cluster = WorkerSettings(topic_prefix="p", topic_replication=3, topic_min_insync=2)
    for spec in topology(cluster):
        assert (spec.replication, spec.min_insync) == (3, 2)
        assert spec.configs()["min.insync.replicas"] == "2"
    with pytest.raises(ValueError, match="larger than GENPULSE_TOPIC_REPLICATION"):
        WorkerSettings(topic_replication=1, topic_min_insync=2)


def test_a_matching_broker_has_no_problems() -> None:
    specs = topology(SETTINGS)
    assert problems(specs, matching(specs)) == []


def test_each_kind_of_mismatch_is_named() -> None:
    specs = topology(SETTINGS)
    good = matching(specs)

    def only(name: str, observed: Observed | None) -> list[str]:
        state = dict(good)
        if observed is None:
            del state[name]
        else:
            state[name] = observed
        return [f"{p.severity} {p}" for p in problems(specs, state)]

    changelog = "p.worker-events-changelog"
    auto_created = Observed(1, 1, {"cleanup.policy": "delete", "min.insync.replicas": "1"})
    assert only(changelog, auto_created) == [
        f"{ERROR} topic {changelog}: 1 partition but its source p.events has 6 (the state of "
        "the others cannot be kept); run `genpulse topics create` (adds the missing, empty "
        "partitions)",
        f"{ERROR} topic {changelog}: cleanup.policy is delete, must be compact; "
        "run `genpulse topics create`",
    ]
    assert only("p.control", None) == [
        f"{ERROR} topic p.control: missing; run `genpulse topics create`"
    ]
    three = replace(good["p.control"], partitions=3)
    assert "3 partitions, must be 1" in only("p.control", three)[0]
    fewer = replace(good["p.events"], partitions=2)
    problems_fewer = only("p.events", fewer)
    assert problems_fewer[0].startswith(WARNING)  # sources may be smaller on purpose...
    assert not any("worker-events-changelog" in p for p in problems_fewer)  # ...6 >= 2
    cluster = WorkerSettings(topic_prefix="p", topic_replication=3, topic_min_insync=2)
    found = problems(topology(cluster), good)
    assert len(errors(found)) == 22  # every topic: replication and min.insync too low
    assert "replication factor 1, GENPULSE_TOPIC_REPLICATION is 3" in str(found[0])
    retention = replace(good["p.events"], configs={**good["p.events"].configs, "retention.ms": "1"})
    assert only("p.events", retention)[0].startswith(WARNING)


@given(source=st.integers(1, 64), changelog=st.integers(1, 64))
def test_a_changelog_is_refused_exactly_when_smaller_than_its_source(
    source: int, changelog: int
) -> None:
    specs = topology(SETTINGS)
    state = matching(specs)
    state["p.events"] = replace(state["p.events"], partitions=source)
    state["p.worker-events-changelog"] = replace(
        state["p.worker-events-changelog"], partitions=changelog
    )
    refused = [p for p in errors(problems(specs, state)) if "worker-events" in p.topic]
    assert bool(refused) == (changelog < source)


@given(count=st.integers(0, 64))
def test_a_changelog_is_never_created_from_a_count_of_zero(count: int) -> None:
    specs = {s.name: s for s in topology(SETTINGS)}
    changelog = specs["p.worker-events-changelog"]
    observed = {"p.events": Observed(count, 1)}
    assert creation_partitions(changelog, observed) == (count or None)
    assert creation_partitions(changelog, {}) is None
    assert creation_partitions(specs["p.events"], {}) == 6

"""The compose files (no Docker engine here to run them): brokers never auto-create topics,
every client waits for the `topics` service, and the 3-broker override is a consistent
quorum with replication 3 / min ISR 2 that the clients are told about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ("worker", "api", "demo", "sinks")


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def kafka_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["services"].items() if k.startswith("kafka")}


def test_single_broker_creates_no_topics_by_itself() -> None:
    doc = load("docker-compose.yml")
    (kafka,) = kafka_services(doc).values()
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    topics = doc["services"]["topics"]
    assert topics["command"] == ["topics", "create"]
    for name in CLIENTS:
        service = doc["services"][name]
        assert service["depends_on"]["topics"] == {"condition": "service_completed_successfully"}
        assert "kafka" not in service["depends_on"], name  # only through `topics`
    for name in ("topics", "worker", "api", "sinks"):
        env = doc["services"][name]["environment"]
        assert (env["GENPULSE_TOPIC_REPLICATION"], env["GENPULSE_TOPIC_MIN_INSYNC"]) == ("1", "1")


def test_cluster_override_is_three_replicated_brokers() -> None:
    doc = load("docker-compose.cluster.yml")
    brokers = kafka_services(doc)
    assert sorted(brokers) == ["kafka", "kafka-2", "kafka-3"]
    ids = set()
    for name, service in brokers.items():
        env = service["environment"]
        ids.add(env["KAFKA_NODE_ID"])
        voters = dict(v.split("@") for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        assert voters[str(env["KAFKA_NODE_ID"])] == f"{name}:9093"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
        assert f"PLAINTEXT://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
        assert len(env["CLUSTER_ID"]) == 22  # Kafka's base64 uuid
    assert ids == {1, 2, 3}
    assert set(doc["services"]["topics"]["depends_on"]) == set(brokers)
    for name in ("topics", *CLIENTS):
        env = doc["services"][name]["environment"]
        assert env["GENPULSE_TOPIC_REPLICATION"] == "3"
        assert env["GENPULSE_TOPIC_MIN_INSYNC"] == "2"
        assert env["GENPULSE_KAFKA_BOOTSTRAP"].split(",") == [f"{b}:19092" for b in brokers]

"""Session-wide real services and per-test isolation (unique topic prefixes, key prefixes)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from genpulse.devservices import KafkaCluster, KafkaServer, start_kafka, start_kafka_cluster
from producers.settings import GenPulseSettings
from tests.services import create_topology, kafka_service, redis_service

# shared checks are plain modules: have pytest show the values of a failing assert there too
pytest.register_assert_rewrite("tests.streams.checks")

# Property tests draw the same examples on every run by default, so a run of the suite (CI's
# fresh clone has no example database) is decided by the code, not by the draw; run with
# GENPULSE_HYPOTHESIS=explore to search new examples (and keep what fails in .hypothesis/).
hypothesis_settings.register_profile("fixed", derandomize=True, database=None)
hypothesis_settings.register_profile("explore")
hypothesis_settings.load_profile(os.environ.get("GENPULSE_HYPOTHESIS", "fixed"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cluster tests (minutes, three brokers) run only when asked for; CI's suite stays short."""
    if os.environ.get("GENPULSE_CLUSTER_TESTS") == "1" or "cluster" in config.option.markexpr:
        return
    skip = pytest.mark.skip(reason="cluster test: run with -m cluster or GENPULSE_CLUSTER_TESTS=1")
    for item in items:
        if item.get_closest_marker("cluster") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A real 3-broker KRaft cluster shared by the session's cluster tests."""
    cluster = start_kafka_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real broker shared by the session."""
    with kafka_service(tmp_path_factory.mktemp("services")) as bootstrap:
        os.environ["GENPULSE_KAFKA_BOOTSTRAP"] = bootstrap  # for subprocesses the tests start
        yield bootstrap


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis shared by the session."""
    with redis_service(tmp_path_factory.mktemp("services")) as url:
        os.environ["GENPULSE_REDIS_URL"] = url
        yield url


@pytest.fixture
def unique() -> str:
    """A short unique token for topic names and key prefixes."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(kafka_bootstrap: str, unique: str) -> GenPulseSettings:
    """Settings whose topics are private to this test, created as a first run would have
    them (by the worker or `genpulse topics create`)."""
    create_topology(kafka_bootstrap, f"test-{unique}")
    return GenPulseSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=f"test-{unique}")


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[KafkaServer]:
    """A broker of this test's own, for tests that stop, kill or restart Kafka."""
    server = start_kafka(tmp_path / "private-kafka")
    try:
        yield server
    finally:
        server.stop()

"""Kafka down for 20 s mid-stream: nothing lost, nothing dropped; tiny limits drop exactly."""

from __future__ import annotations

import threading
import time

import pytest

from genpulse.devservices import KafkaServer, start_kafka
from genpulse.devservices.ports import free_port
from producers import GenPulse
from tests.producers.kafka_read import duplicates, in_session_order, read_topic
from tests.services import create_topology

RATE_PER_S = 1000


def _client(bootstrap: str, prefix: str, **overrides: object) -> GenPulse:
    return GenPulse(
        service="outage-test",
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        follow_budget_state=False,
        retry_max_backoff_s=2.0,
        **overrides,
    )


def test_broker_stopped_20s_loses_nothing(
    private_kafka: KafkaServer, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kafka request timeout shorter than the outage: a batch the broker took while shutting
    # down must still not come back and be sent twice (see _never_expire_batches).
    monkeypatch.setattr("producers.sender.REQUEST_TIMEOUT_MS", 5_000)
    for prefix in (f"steady-{unique}", f"tiny-{unique}"):
        create_topology(private_kafka.bootstrap, prefix)
    steady = _client(private_kafka.bootstrap, f"steady-{unique}")
    tiny = _client(private_kafka.bootstrap, f"tiny-{unique}", max_buffer_events=100)
    tracked = 0
    stop = threading.Event()

    def produce() -> None:  # ~1,000 events/s until told to stop
        nonlocal tracked
        began = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - began) * RATE_PER_S)
            while tracked < due:
                steady.events.track("cache_hit", {"i": tracked}, session_id=f"s{tracked % 10}")
                tracked += 1
            time.sleep(0.005)

    worker = threading.Thread(target=produce)
    worker.start()
    restarted: KafkaServer | None = None
    try:
        time.sleep(3)
        private_kafka.stop()
        outage_began = time.monotonic()
        for i in range(250):  # a client that has never connected, with a 100-event buffer
            tiny.events.track("cache_miss", {"i": i}, session_id="tiny")
        tiny_stats = tiny.stats()
        assert (tiny_stats.dropped, tiny_stats.buffered) == (150, 100)
        sent_early = steady.stats().sent
        time.sleep(max(0.0, 20 - (time.monotonic() - outage_began)))
        held = steady.stats()
        assert held.sent == sent_early, "nothing can be delivered while the broker is down"
        assert held.buffered >= 15_000, "about 20 s of events wait for the broker"
        restarted = start_kafka(private_kafka.data_dir, port=private_kafka.port)
        time.sleep(3)
    finally:
        stop.set()
        worker.join()
    try:
        assert steady.flush(timeout=120), steady.stats()
        assert tiny.flush(timeout=60), tiny.stats()
        stats = steady.stats()
        assert stats.dropped == 0 and stats.sent == tracked and stats.failed == 0
        assert stats.resent_uncertain == 0

        assert restarted is not None
        bootstrap = restarted.bootstrap
        received = read_topic(bootstrap, f"steady-{unique}.events", expect=tracked, timeout_s=90)
        assert duplicates(received) == {}
        assert len(received) == tracked
        assert in_session_order(received)

        kept = read_topic(bootstrap, f"tiny-{unique}.events", expect=100, timeout_s=60)
        assert sorted(int(r.value["data"]["i"]) for r in kept) == list(range(150, 250))  # type: ignore[index]
        assert tiny.stats().dropped == 150
    finally:
        steady.close(timeout=5)
        tiny.close(timeout=5)
        if restarted is not None:
            restarted.stop()


def test_byte_limit_drops_oldest_and_counts_each() -> None:
    client = GenPulse(
        service="limits",
        bootstrap_servers=f"127.0.0.1:{free_port()}",  # nothing listens: nothing is sent
        follow_budget_state=False,
        max_buffer_bytes=1024,
        retry_max_backoff_s=0.5,
    )
    try:
        for i in range(10):  # each event is estimated at 264 bytes: three fit in 1 KiB
            client.events.track("cache_hit", {"i": i}, session_id="s")
        stats = client.stats()
        assert (stats.dropped, stats.buffered, stats.sent) == (7, 3, 0)
        assert [e["data"]["i"] for e in client.events.get_events()][-3:] == [7, 8, 9]
    finally:
        assert not client.close(timeout=0.5)

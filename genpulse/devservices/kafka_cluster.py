"""A real 3-node Kafka cluster on loopback, from the same Maven jars as the single broker.

Each node is a combined broker+controller (`process.roles=broker,controller`) and the three
form one KRaft controller quorum. Why combined rather than 3 controllers + 3 brokers: half
the JVMs (three, not six) on a small development machine, and it tolerates the loss of one
node just the same (the quorum keeps 2 of 3 voters, partitions keep 2 of 3 replicas); a
kill of one node also kills a controller, so the fault tests exercise controller fail-over
too. Production clusters usually separate the roles (docs/operations.md).

Each node keeps its metadata log (`metadata.log.dir`) apart from its data (`log.dirs`), so
`lose_data` can model a failed data disk: the node comes back empty and must re-replicate.
Internal topics use replication 3 and `min.insync.replicas` 2; topics are never
auto-created.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genpulse.devservices.kafka import (
    KafkaStartError,
    cluster_id,
    ensure_jars,
    format_storage,
    launch_node,
)
from genpulse.devservices.ports import free_port, port_open, wait_port_closed
from genpulse.devservices.process import ServerProcess

REPLICATION = 3
MIN_INSYNC = 2


def node_properties(node: KafkaNode, voters: str, replication: int, min_insync: int) -> str:
    """One combined node's config: replicated internal topics, no auto-created topics."""
    return f"""\
process.roles=broker,controller
node.id={node.node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={node.data_dir / "data"}
metadata.log.dir={node.data_dir / "meta"}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor={replication}
min.insync.replicas={min_insync}
unclean.leader.election.enable=false
offsets.topic.replication.factor={replication}
offsets.topic.num.partitions=6
transaction.state.log.replication.factor={replication}
transaction.state.log.min.isr={min_insync}
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor={replication}
share.coordinator.state.topic.min.isr={min_insync}
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
log.segment.bytes=104857600
log.retention.hours=168
"""


@dataclass
class KafkaNode:
    """One node of the cluster: its ports, its directory and its process (None when down)."""

    node_id: int
    port: int
    controller_port: int
    data_dir: Path
    process: ServerProcess | None = None

    @property
    def props(self) -> Path:
        return self.data_dir / "server.properties"

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


@dataclass
class KafkaCluster:
    """A running cluster: where to connect, and the faults tests inject (kill -9, restart)."""

    nodes: list[KafkaNode]
    libs: Path
    heap: str = "512m"
    killed_at: dict[int, float] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def stop(self) -> None:
        """Clean shutdown of every node (SIGTERM, SIGKILL after 30 s), all at once."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda n: n.process and n.process.stop(), self.nodes))

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: a crash, no clean shutdown, no leadership hand-over."""
        node = self.node(node_id)
        if node.process is not None:
            node.process.kill()
        wait_port_closed(node.port, 10.0)
        self.killed_at[node_id] = time.monotonic()

    def lose_data(self, node_id: int) -> None:
        """Delete a stopped node's data dir (a failed disk); its metadata log stays."""
        node = self.node(node_id)
        if node.alive():
            raise RuntimeError(f"node {node_id} is running; kill it first")
        shutil.rmtree(node.data_dir / "data", ignore_errors=True)

    def restart(self, node_id: int, timeout_s: float = 120.0) -> None:
        """Start a stopped node on its own dirs and wait until it is back in the metadata."""
        node = self.node(node_id)
        if node.alive():
            return
        format_storage(self.libs, node.props, node.data_dir)  # formats a lost data dir, else no-op
        node.process = launch_node(self.libs, node.props, node.data_dir, self.heap)
        wait_for_brokers(self, len(self.nodes), timeout_s, via=[node])

    def leaders(self, topics: Iterable[str]) -> Counter[int]:
        """How many partitions of `topics` each node leads right now."""
        described = _in_own_loop(_describe_topics(self.bootstrap, list(topics)))
        return Counter(p["leader"] for t in described for p in t["partitions"] if p["leader"] >= 0)

    def busiest_leader(self, topics: Iterable[str]) -> int:
        """The node that leads the most partitions of `topics` (ties: the lowest id)."""
        counts = self.leaders(topics)
        return max(sorted(counts), key=lambda node_id: counts[node_id])

    def under_replicated(self, topics: Iterable[str]) -> int:
        """Partitions of `topics` whose in-sync replicas are fewer than their replicas."""
        described = _in_own_loop(_describe_topics(self.bootstrap, list(topics)))
        return sum(len(p["isr"]) < len(p["replicas"]) for t in described for p in t["partitions"])


def start_kafka_cluster(
    work_dir: Path,
    brokers: int = 3,
    ports: list[int] | None = None,
    heap: str = "512m",
    timeout_s: float = 180.0,
) -> KafkaCluster:
    """Format and start `brokers` combined nodes on 127.0.0.1 (free ports unless `ports`);
    returns once every node is in the cluster metadata."""
    if brokers < 1:
        raise KafkaStartError("a cluster needs at least one broker")
    libs = ensure_jars()
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    client_ports = ports or [free_port() for _ in range(brokers)]
    nodes = [
        KafkaNode(i + 1, client_ports[i], free_port(), work_dir / f"node-{i + 1}")
        for i in range(brokers)
    ]
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    replication = min(REPLICATION, brokers)
    min_insync = min(MIN_INSYNC, replication)
    cid = cluster_id(libs, work_dir / "cluster.id")
    for node in nodes:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        (node.data_dir / "cluster.id").write_text(cid)
        node.props.write_text(node_properties(node, voters, replication, min_insync))
    with ThreadPoolExecutor(max_workers=brokers) as pool:  # the JVM starts are the slow part
        list(pool.map(lambda n: format_storage(libs, n.props, n.data_dir), nodes))
    cluster = KafkaCluster(nodes=nodes, libs=libs, heap=heap)
    for node in nodes:
        node.process = launch_node(libs, node.props, node.data_dir, heap)
    try:
        wait_for_brokers(cluster, brokers, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def wait_for_brokers(
    cluster: KafkaCluster, count: int, timeout_s: float, via: list[KafkaNode] | None = None
) -> None:
    """Wait until the metadata lists `count` brokers (not merely until ports open). `via`:
    ask these nodes only (a restarted node must answer itself; the others may still list it
    from before its crash)."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        for node in cluster.nodes:
            if node.process is not None and not node.process.alive():
                raise KafkaStartError(
                    f"Kafka node {node.node_id} exited during start-up:\n{node.process.log_tail()}"
                )
        asked = via or cluster.nodes
        live = [n for n in asked if port_open(n.port)]
        if live and (via is None or len(live) == len(via)):
            try:
                brokers = _in_own_loop(_broker_ids(",".join(f"127.0.0.1:{n.port}" for n in live)))
                if len(brokers) >= count:
                    return
                last = f"brokers in metadata: {sorted(brokers)}"
            except Exception as exc:  # not ready yet: keep polling
                last = exc
        time.sleep(0.5)
    raise KafkaStartError(f"Kafka cluster not ready after {timeout_s}s: {last}")


async def _broker_ids(bootstrap: str) -> list[int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        described = await admin.describe_cluster()
        return [b["node_id"] for b in described["brokers"]]
    finally:
        await admin.close()


async def _describe_topics(bootstrap: str, topics: list[str]) -> list[Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return list(await admin.describe_topics(topics))
    finally:
        await admin.close()


def _in_own_loop(coro: Any) -> Any:
    """Run a coroutine on a private loop, so callers inside a running loop work too."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()

"""`genpulse dev`: keep a local Kafka + Redis running in the background between commands.

State (data dirs, pids, ports) lives under .genpulse/ in the working directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from genpulse.devservices import start_kafka, start_kafka_cluster, start_redis
from genpulse.devservices.ports import port_open
from genpulse.devservices.process import ServerProcess

STATE_DIR = Path(os.environ.get("GENPULSE_STATE_DIR", ".genpulse"))


class DevStackError(RuntimeError):
    """The local services cannot start as asked (e.g. a port is taken); the message says how
    to fix it."""


@dataclass
class DevStack:
    kafka_bootstrap: str
    kafka_pid: int
    redis_url: str
    redis_pid: int
    kafka_pids: list[int] = field(default_factory=list)  # every node when --brokers > 1

    @property
    def env(self) -> dict[str, str]:
        return {
            "GENPULSE_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "GENPULSE_REDIS_URL": self.redis_url,
        }


def _state_file() -> Path:
    return STATE_DIR / "dev.json"


def load() -> DevStack | None:
    try:
        return DevStack(**json.loads(_state_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def up(kafka_port: int, redis_port: int, brokers: int = 1) -> tuple[DevStack, bool]:
    """Start the servers unless they already run; returns (stack, started_now). With
    `brokers` > 1 Kafka is a cluster on kafka_port, kafka_port+1, ... (replication 3)."""
    current = load()
    if current and _running(current):
        return current, False
    kafka_ports = [kafka_port + i for i in range(brokers)]
    taken = [p for p in [*kafka_ports, redis_port] if port_open(p)]
    if taken:
        raise DevStackError(
            f"port {taken[0]} is taken by another process; pick free ones with "
            "--kafka-port/--redis-port (or stop what listens there)"
        )
    if brokers > 1:
        cluster = start_kafka_cluster(STATE_DIR / "kafka-cluster", brokers, kafka_ports)
        bootstrap = cluster.bootstrap
        pids = [n.process.pid for n in cluster.nodes if n.process is not None]
    else:
        kafka = start_kafka(STATE_DIR / "kafka", port=kafka_port)
        bootstrap, pids = kafka.bootstrap, [kafka.process.pid]
    redis = start_redis(STATE_DIR / "redis", port=redis_port)
    stack = DevStack(bootstrap, pids[0], redis.url, redis.process.pid, pids)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps(asdict(stack)))
    (STATE_DIR / "env").write_text("".join(f"export {k}={v}\n" for k, v in stack.env.items()))
    return stack, True


def down() -> bool:
    stack = load()
    if stack is None:
        return False
    for pid in _kafka_pids(stack):
        ServerProcess(pid=pid, log_path=STATE_DIR / "kafka").stop()
    ServerProcess(pid=stack.redis_pid, log_path=STATE_DIR / "redis/redis.log").stop()
    _state_file().unlink(missing_ok=True)
    return True


def _kafka_pids(stack: DevStack) -> list[int]:
    return stack.kafka_pids or [stack.kafka_pid]


def _running(stack: DevStack) -> bool:
    pids = [*_kafka_pids(stack), stack.redis_pid]
    procs = [ServerProcess(pid=p, log_path=STATE_DIR) for p in pids]
    return all(p.alive() for p in procs)


def status() -> dict[str, object]:
    stack = load()
    if stack is None:
        return {"running": False}
    return {"running": _running(stack), **asdict(stack)}

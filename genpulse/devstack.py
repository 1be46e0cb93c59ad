"""`genpulse dev`: keep a local Kafka + Redis running in the background between commands.

State (data dirs, pids, ports) lives under .genpulse/ in the working directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from genpulse.devservices import start_kafka, start_redis
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


def up(kafka_port: int, redis_port: int) -> tuple[DevStack, bool]:
    """Start both servers unless they already run; returns (stack, started_now)."""
    current = load()
    if current and _running(current):
        return current, False
    if port_open(kafka_port) or port_open(redis_port):
        taken = kafka_port if port_open(kafka_port) else redis_port
        raise DevStackError(
            f"port {taken} is taken by another process; pick free ones with "
            "--kafka-port/--redis-port (or stop what listens there)"
        )
    kafka = start_kafka(STATE_DIR / "kafka", port=kafka_port)
    redis = start_redis(STATE_DIR / "redis", port=redis_port)
    stack = DevStack(kafka.bootstrap, kafka.process.pid, redis.url, redis.process.pid)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps(asdict(stack)))
    (STATE_DIR / "env").write_text("".join(f"export {k}={v}\n" for k, v in stack.env.items()))
    return stack, True


def down() -> bool:
    stack = load()
    if stack is None:
        return False
    for pid, log in ((stack.kafka_pid, "kafka/kafka.out"), (stack.redis_pid, "redis/redis.log")):
        ServerProcess(pid=pid, log_path=STATE_DIR / log).stop()
    _state_file().unlink(missing_ok=True)
    return True


def _running(stack: DevStack) -> bool:
    procs = [ServerProcess(pid=p, log_path=STATE_DIR) for p in (stack.kafka_pid, stack.redis_pid)]
    return all(p.alive() for p in procs)


def status() -> dict[str, object]:
    stack = load()
    if stack is None:
        return {"running": False}
    return {"running": _running(stack), **asdict(stack)}

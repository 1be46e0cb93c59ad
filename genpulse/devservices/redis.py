"""Run Debian's redis-server on 127.0.0.1 for development and tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from genpulse.devservices.ports import free_port, port_open
from genpulse.devservices.process import ServerProcess


class RedisStartError(RuntimeError):
    """redis-server is missing or did not answer PING."""


@dataclass
class RedisServer:
    url: str
    port: int
    process: ServerProcess

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()


def start_redis(data_dir: Path, port: int | None = None) -> RedisServer:
    """Start redis-server (no persistence: it only holds snapshots the worker rewrites)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisStartError(
            "redis-server is not installed; run `bash deploy/bootstrap.sh` "
            "(apt-get install redis-server)."
        )
    port = port or free_port()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "redis.log"
    cmd = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        str(log_path),
    ]
    popen = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    proc = ServerProcess(pid=popen.pid, log_path=log_path, popen=popen)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RedisStartError(f"redis-server exited:\n{proc.log_tail()}")
        if port_open(port) and _ping(port):
            return RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, process=proc)
        time.sleep(0.05)
    proc.stop()
    raise RedisStartError(f"redis-server on port {port} did not answer PING:\n{proc.log_tail()}")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False

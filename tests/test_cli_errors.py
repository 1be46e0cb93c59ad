"""Mistakes a user makes with the `genpulse` command end in one line, not a traceback.

Each case runs the real command in a subprocess: a taken port, an unreachable broker, a
missing Java, a bad setting. The line must say what is wrong and what to do, the exit code
must be 2, and nothing of a Python traceback may show.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from genpulse.devservices import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def run(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GENPULSE_")}
    return subprocess.run(
        [sys.executable, "-m", "genpulse.cli", *args],
        env={**base, "GENPULSE_STATE_DIR": str(tmp / "state"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
        check=False,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output and 'File "' not in output, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genpulse: "), output
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_dev_up_on_a_taken_port(tmp_path: Path, taken_port: int) -> None:
    done = run(tmp_path, "dev", "up", "--kafka-port", str(taken_port))
    assert_one_line(done, f"port {taken_port} is taken", "--kafka-port")
    done = run(
        tmp_path, "dev", "up", "--kafka-port", str(free_port()), "--redis-port", str(taken_port)
    )
    assert_one_line(done, f"port {taken_port} is taken", "--redis-port")


def test_dev_up_without_java(tmp_path: Path) -> None:
    no_java = tmp_path / "bin"  # a PATH with the usual tools but no java and no mvn
    no_java.mkdir()
    for tool in ("redis-server", "sh"):
        found = next(
            (Path(d) / tool for d in os.environ["PATH"].split(":") if (Path(d) / tool).exists()),
            None,
        )
        if found is not None:
            (no_java / tool).symlink_to(found)
    done = run(
        tmp_path,
        "dev",
        "up",
        "--kafka-port",
        str(free_port()),
        "--redis-port",
        str(free_port()),
        PATH=str(no_java),
    )
    line = assert_one_line(done, "is not on PATH")
    assert "Java" in line, line  # "Java is not on PATH", or Maven's when the jars are not cached


@pytest.mark.parametrize(
    "args",
    [("worker",), ("topics", "check"), ("topics", "create"), ("topics", "describe")],
)
def test_an_unreachable_broker(tmp_path: Path, args: tuple[str, ...]) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    done = run(tmp_path, *args, GENPULSE_KAFKA_BOOTSTRAP=bootstrap)
    assert_one_line(done, f"cannot reach Kafka at {bootstrap}", "genpulse dev up")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ("worker",),
            {"GENPULSE_TOPIC_PARTITIONS": "six"},
            "bad setting GENPULSE_TOPIC_PARTITIONS",
        ),
        (
            ("worker",),
            {"GENPULSE_TOPIC_REPLICATION": "0"},
            "bad setting GENPULSE_TOPIC_REPLICATION",
        ),
        (
            ("topics", "check"),
            {"GENPULSE_TOPIC_REPLICATION": "1", "GENPULSE_TOPIC_MIN_INSYNC": "2"},
            "GENPULSE_TOPIC_MIN_INSYNC (2) is larger than GENPULSE_TOPIC_REPLICATION (1)",
        ),
        (("api",), {"GENPULSE_API_PORT": "eighty"}, "bad setting GENPULSE_API_PORT"),
        (("api",), {"GENPULSE_API_READ_TOKENS": "short"}, "bad setting GENPULSE_API_READ_TOKENS"),
    ],
)
def test_a_bad_setting(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    line = assert_one_line(run(tmp_path, *args, **env), expected, "fix")
    assert "short" not in line or "READ_TOKENS" not in expected  # secrets are not echoed


def test_api_on_a_taken_port(tmp_path: Path, taken_port: int) -> None:
    done = run(tmp_path, "api", "--port", str(taken_port))
    assert_one_line(done, f"cannot listen on 127.0.0.1:{taken_port}", "--port")

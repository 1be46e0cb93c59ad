"""Run real Apache Kafka (KRaft) from Maven Central jars: one node, or a 3-node cluster.

The jars are fetched once by Maven (deploy/kafka/pom.xml) into a cache directory keyed by
the pom's content; later starts only format a log dir and launch the JVM. Topics are never
auto-created: every topic is made on purpose (streams/topics.py, `genpulse topics`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from genpulse.devservices.ports import free_port, port_open
from genpulse.devservices.process import ServerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J2_CONFIG = REPO_ROOT / "deploy" / "kafka" / "log4j2.properties"


def cache_root() -> Path:
    return Path(os.environ.get("GENPULSE_CACHE_DIR", Path.home() / ".cache" / "genpulse"))


class KafkaStartError(RuntimeError):
    """The broker could not be fetched, formatted or started; the message says which."""


def ensure_jars(pom: Path = POM) -> Path:
    """Return a directory holding the broker's runtime jars, running Maven only when needed."""
    key = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    libs = cache_root() / f"kafka-{key}" / "libs"
    marker = libs.parent / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaStartError("Maven (mvn) is not on PATH; install Java 17+ and Maven first.")
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KafkaStartError(f"Maven could not fetch Kafka jars:\n{done.stdout}\n{done.stderr}")
    marker.write_text(key)
    return libs


def server_properties(
    data_dir: Path, port: int, controller_port: int, advertised_port: int | None = None
) -> str:
    """Single-node combined KRaft config; replication 1 everywhere so transactions work.
    `advertised_port`: where clients are told to connect (a proxy in front of `port`)."""
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{advertised_port or port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir / "log"}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
log.segment.bytes=104857600
log.retention.hours=168
"""


@dataclass
class KafkaServer:
    """A running broker: where to connect and how to stop it."""

    bootstrap: str
    port: int
    data_dir: Path
    process: ServerProcess

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()


def java_path() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaStartError("Java is not on PATH; Kafka 4.x needs Java 17+.")
    return java


def cluster_id(libs: Path, id_file: Path) -> str:
    """The cluster id kept in `id_file`, made on first use (a restart must reuse it)."""
    if not id_file.exists():
        out = subprocess.run(
            [java_path(), "-cp", f"{libs}/*", "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True,
            text=True,
            check=True,
        )
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(out.stdout.strip().splitlines()[-1])
    return id_file.read_text().strip()


def format_storage(libs: Path, props: Path, data_dir: Path) -> None:
    """Format the dirs `props` names with the id in <data_dir>/cluster.id; formatted dirs
    are left alone (`-g`), so this is also how a node gets a lost data dir back."""
    cid = cluster_id(libs, data_dir / "cluster.id")
    done = subprocess.run(
        [
            java_path(),
            "-cp",
            f"{libs}/*",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cid,
            "-c",
            str(props),
            "-g",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise KafkaStartError(f"kafka-storage format failed:\n{done.stdout}\n{done.stderr}")


async def _describe_cluster(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        await admin.describe_cluster()
    finally:
        await admin.close()


def _run_in_own_loop(bootstrap: str) -> None:
    """Ask for metadata from a private loop, so callers inside a running loop work too."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _describe_cluster(bootstrap)).result()


def wait_until_ready(
    bootstrap: str, timeout_s: float = 90.0, proc: ServerProcess | None = None
) -> None:
    """Wait until a client gets cluster metadata, not merely until the port opens."""
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise KafkaStartError(f"Kafka exited during start-up:\n{proc.log_tail()}")
        if port_open(int(port), host):
            try:
                _run_in_own_loop(bootstrap)
                return
            except Exception as exc:  # not ready yet: keep polling
                last_error = exc
        time.sleep(0.3)
    tail = proc.log_tail() if proc else ""
    raise KafkaStartError(
        f"Kafka at {bootstrap} not ready after {timeout_s}s: {last_error}\n{tail}"
    )


def launch_node(libs: Path, props: Path, data_dir: Path, heap: str) -> ServerProcess:
    """Start `kafka.Kafka` on a formatted dir; logs go to <data_dir>/server.log and kafka.out."""
    log_path = data_dir / "kafka.out"
    env = {**os.environ, "KAFKA_LOG_DIR": str(data_dir)}
    cmd = [
        java_path(),
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dgenpulse.kafka.logdir={data_dir}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(props),
    ]
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return ServerProcess(pid=popen.pid, log_path=log_path, popen=popen)


def start_kafka(
    data_dir: Path,
    port: int | None = None,
    controller_port: int | None = None,
    heap: str = "512m",
    advertised_port: int | None = None,
) -> KafkaServer:
    """Format `data_dir` (idempotent), start a broker on 127.0.0.1, wait until it serves.
    With `advertised_port`, clients are sent there (something must forward it to `port`)."""
    libs = ensure_jars()
    port = port or free_port()
    controller_port = controller_port or free_port()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    props = data_dir / "server.properties"
    props.write_text(server_properties(data_dir, port, controller_port, advertised_port))
    format_storage(libs, props, data_dir)
    proc = launch_node(libs, props, data_dir, heap)
    bootstrap = f"127.0.0.1:{advertised_port or port}"
    try:
        wait_until_ready(bootstrap, proc=proc)
    except BaseException:
        proc.stop()
        raise
    return KafkaServer(bootstrap=bootstrap, port=port, data_dir=data_dir, process=proc)

"""The `genpulse` command: local services, topics, worker, api, sinks and demo traffic.

Errors a user can fix (a taken port, an unreachable broker, a missing Java, a bad setting,
topics that differ from the definition) end the command with one line on stderr and exit
code 2 (genpulse/errors.py); `genpulse topics check` exits 1 when the topics differ.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

import typer

from genpulse.demo.cli import demo_app

if TYPE_CHECKING:
    from streams.topology import Problem

app = typer.Typer(
    help="genpulse: monitoring and analytics for LLM products.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dev_app = typer.Typer(help="Local Kafka (KRaft, Maven jars) and Redis for development.")
topics_app = typer.Typer(
    help="The topics genpulse needs (docs/topics.md): create, check, describe.",
    no_args_is_help=True,
)
app.add_typer(dev_app, name="dev")
app.add_typer(topics_app, name="topics")
app.add_typer(demo_app, name="demo")


@dev_app.command("up")
def dev_up(
    kafka_port: int = typer.Option(9092, help="Kafka client port on 127.0.0.1."),
    redis_port: int = typer.Option(6379, help="Redis port on 127.0.0.1."),
    brokers: int = typer.Option(
        1, min=1, help="Kafka nodes; 3 makes a cluster on kafka-port, +1, +2 (replication 3)."
    ),
) -> None:
    """Start Kafka and Redis in the background (state under .genpulse/)."""
    from genpulse import devstack

    began = time.monotonic()
    stack, started = devstack.up(kafka_port, redis_port, brokers)
    verb = f"started in {time.monotonic() - began:.1f}s" if started else "already running"
    typer.echo(f"Kafka {stack.kafka_bootstrap} and Redis {stack.redis_url}: {verb}")
    typer.echo("Environment for other shells: source .genpulse/env")


@dev_app.command("down")
def dev_down() -> None:
    """Stop the Kafka and Redis that `genpulse dev up` started."""
    from genpulse import devstack

    typer.echo("stopped" if devstack.down() else "nothing was running")


@dev_app.command("status")
def dev_status() -> None:
    """Print whether the local services run, and where."""
    from genpulse import devstack

    typer.echo(json.dumps(devstack.status(), indent=2))


@topics_app.command("create")
def topics_create() -> None:
    """Create the missing topics and fix what is safe to fix in place (a changelog's missing
    partitions, a compacted topic's cleanup policy, min.insync.replicas). Idempotent."""
    from streams.settings import WorkerSettings
    from streams.topics import apply

    specs, _, found = asyncio.run(apply(WorkerSettings(), repair=True))  # type: ignore[call-arg]
    _report(len(specs), found)


@topics_app.command("check")
def topics_check() -> None:
    """Compare the broker's topics with the definition, changing nothing; exit 1 if they
    differ in a way the worker refuses."""
    from streams.settings import WorkerSettings
    from streams.topics import auto_creating_brokers, inspect

    settings = WorkerSettings()  # type: ignore[call-arg]  # filled from GENPULSE_* env
    specs, _, found = asyncio.run(inspect(settings))
    for broker in asyncio.run(auto_creating_brokers(settings)):
        typer.echo(
            f"warning: broker {broker} has auto.create.topics.enable=true: a client touching "
            "a missing topic creates it with the broker's defaults; set it to false"
        )
    _report(len(specs), found)


@topics_app.command("describe")
def topics_describe(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per topic."),
) -> None:
    """Print the definition beside what the broker has, topic by topic."""
    from streams.settings import WorkerSettings
    from streams.topics import describe_rows, inspect

    rows = describe_rows(*asyncio.run(inspect(WorkerSettings())))  # type: ignore[call-arg]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("topic", "partitions", "replication", "cleanup", "min.insync", "retention ms")
    table.add_column("status")
    for row in rows:
        table.add_row(
            row["topic"],
            *(
                f"{_shown(row[key], '-')} / {_shown(row['has_' + key], 'missing')}"
                for key in ("partitions", "replication", "cleanup", "min_insync", "retention_ms")
            ),
            "; ".join(row["problems"]) or "ok",
        )
    Console(width=200).print(table)
    typer.echo("(each cell: definition / broker)")


def _shown(value: object, none: str) -> str:
    return none if value is None else str(value)


def _report(count: int, found: list[Problem]) -> None:
    from streams.topology import ERROR

    for problem in found:
        typer.echo(f"{problem.severity}: {problem}")
    if any(p.severity == ERROR for p in found):
        raise typer.Exit(1)
    typer.echo(f"{count} topics match the definition")


@app.command("worker")
def worker(
    worker_id: str = typer.Option("", help="Stable name of this worker (GENPULSE_WORKER_ID)."),
    datadir: str = typer.Option("", help="Local RocksDB state (GENPULSE_DATADIR)."),
    log_level: str = typer.Option("info", help="Faust log level."),
) -> None:
    """Run the stream worker (Faust app streams.app): aggregates, budgets, alerts, snapshots."""
    import os
    import sys

    if worker_id:
        os.environ["GENPULSE_WORKER_ID"] = worker_id
    if datadir:
        os.environ["GENPULSE_DATADIR"] = datadir
    from streams.settings import WorkerSettings
    from streams.topics import ensure_topics

    # settings and topics are checked here, so a mistake is one line, not a Faust traceback
    asyncio.run(ensure_topics(WorkerSettings()))  # type: ignore[call-arg]
    argv = [sys.executable, "-m", "faust", "-A", "streams.app", "worker", "--without-web"]
    os.execv(sys.executable, [*argv, "-l", log_level])


@app.command("sinks")
def sinks(
    log_level: str = typer.Option("info", help="Log level (debug, info, warning, error)."),
    status: bool = typer.Option(False, "--status", help="Print the sinks' health hash and exit."),
) -> None:
    """Run the exporters (Datadog, GA4, alert webhooks) in their own process; see
    docs/integrations.md. Each is off until its GENPULSE_* settings turn it on."""
    import asyncio
    import logging

    from streams.sinks import SinkSettings, print_health, serve
    from streams.sinks.priority import lower_priority

    settings = SinkSettings()  # type: ignore[call-arg]  # filled from GENPULSE_* env
    if status:
        asyncio.run(print_health(settings))
        return
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    priority = lower_priority(settings.sinks_nice, settings.sinks_cpu_idle)
    logging.getLogger("genpulse.sinks").info("CPU priority: %s", priority)
    asyncio.run(serve(settings))  # SIGINT/SIGTERM stop it cleanly


@app.command("api")
def api(
    host: str = typer.Option("", help="Listen address (default GENPULSE_API_HOST, 127.0.0.1)."),
    port: int = typer.Option(0, help="Listen port (default GENPULSE_API_PORT, 8000)."),
    workers: int = typer.Option(1, help="uvicorn worker processes."),
    log_level: str = typer.Option("info", help="Log level (debug, info, warning, error)."),
) -> None:
    """Run the HTTP API (uvicorn): metrics, budgets, alerts, exports, ingest, SSE, /metrics.
    Tokens and limits come from GENPULSE_API_* (docs/configuration.md, docs/api.md)."""
    import logging

    import uvicorn

    from api.settings import ApiSettings

    settings = ApiSettings()  # type: ignore[call-arg]  # filled from GENPULSE_* env
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    host, port = host or settings.api_host, port or settings.api_port
    _port_free(host, port)
    if not (settings.api_read_tokens or settings.api_admin_tokens or settings.api_ingest_keys):
        typer.echo("warning: no GENPULSE_API_* tokens configured: every /v1 route answers 401")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,  # its lines carry query strings (?key=); api/observability.py logs
        proxy_headers=True,
        timeout_graceful_shutdown=5,  # SSE streams never end by themselves
    )


def _port_free(host: str, port: int) -> None:
    import socket

    from genpulse.errors import CommandError

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pick another port with "
                "--port or GENPULSE_API_PORT"
            ) from None


def main() -> None:
    """The console entry point: `app` with user errors as one line, not a traceback."""
    import logging

    from genpulse.errors import USER_ERRORS, one_line

    # aiokafka's connect warnings would otherwise reach stderr before our one line
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    try:
        app()
    except USER_ERRORS as exc:
        typer.echo(f"genpulse: {one_line(exc)}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

"""The `genpulse` command: local services now; worker, api and demo traffic join as they land."""

from __future__ import annotations

import json
import time

import typer

from genpulse.demo.cli import demo_app

app = typer.Typer(help="genpulse: monitoring and analytics for LLM products.", no_args_is_help=True)
dev_app = typer.Typer(help="Local Kafka (KRaft, Maven jars) and Redis for development.")
app.add_typer(dev_app, name="dev")
app.add_typer(demo_app, name="demo")


@dev_app.command("up")
def dev_up(
    kafka_port: int = typer.Option(9092, help="Kafka client port on 127.0.0.1."),
    redis_port: int = typer.Option(6379, help="Redis port on 127.0.0.1."),
) -> None:
    """Start Kafka and Redis in the background (state under .genpulse/)."""
    from genpulse import devstack

    began = time.monotonic()
    stack, started = devstack.up(kafka_port, redis_port)
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
    argv = [sys.executable, "-m", "faust", "-A", "streams.app", "worker", "--without-web"]
    os.execv(sys.executable, [*argv, "-l", log_level])


@app.command("sinks")
def sinks(
    log_level: str = typer.Option("info", help="Log level (debug, info, warning, error)."),
) -> None:
    """Run the exporters (Datadog, GA4, alert webhooks) in their own process; see
    docs/integrations.md. Each is off until its GENPULSE_* settings turn it on."""
    import asyncio
    import logging

    from streams.sinks import SinkSettings, serve

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = SinkSettings()  # type: ignore[call-arg]  # filled from GENPULSE_* env
    asyncio.run(serve(settings))  # SIGINT/SIGTERM stop it cleanly


if __name__ == "__main__":
    app()

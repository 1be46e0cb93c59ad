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
    if not (settings.api_read_tokens or settings.api_admin_tokens or settings.api_ingest_keys):
        typer.echo("warning: no GENPULSE_API_* tokens configured: every /v1 route answers 401")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level=log_level,
        access_log=False,  # its lines carry query strings (?key=); api/observability.py logs
        proxy_headers=True,
        timeout_graceful_shutdown=5,  # SSE streams never end by themselves
    )


if __name__ == "__main__":
    app()

"""`genpulse demo traffic`: drive the SDK with seeded, realistic traffic and show events/s."""

from __future__ import annotations

import typer

demo_app = typer.Typer(help="Demo traffic for the pipeline.", no_args_is_help=True)


@demo_app.command("traffic")
def traffic(
    rate: float = typer.Option(200.0, help="Events per second (0: as fast as possible)."),
    duration: float = typer.Option(60.0, help="Seconds to run."),
    seed: int = typer.Option(1, help="Seed: the same seed gives the same sessions."),
    sessions: int | None = typer.Option(None, help="Stop after this many sessions."),
    service: str = typer.Option("uvp-generator", help="Service name on the events."),
) -> None:
    """Send sessions through the four phases, model calls, user actions and failures."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from genpulse.demo.driver import drive
    from producers import GenPulse

    client = GenPulse.from_env(service=service)
    columns = (
        TextColumn("[bold]demo traffic"),
        BarColumn(),
        TextColumn("{task.fields[events]:>9,} events"),
        TextColumn("{task.fields[rate]:>8,.0f} events/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("traffic", total=duration, events=0, rate=0.0)

        def show(events: int, elapsed: float) -> None:
            progress.update(
                task,
                completed=min(elapsed, duration),
                events=events,
                rate=events / max(elapsed, 1e-9),
            )

        result = drive(
            client,
            seed=seed,
            sessions=sessions,
            duration_s=duration,
            rate=rate or None,
            on_progress=show,
        )
    delivered = client.flush(timeout=30)
    stats = client.stats()
    client.close()
    typer.echo(
        f"{result.sessions} sessions, {result.events} events, {result.measures} measurements "
        f"in {result.elapsed_s:.1f}s; Kafka acknowledged {stats.sent} events, "
        f"{stats.metric_batches_sent} metric batches; dropped {stats.dropped}"
        + ("" if delivered else " (some still buffered: is Kafka reachable?)")
    )
    if not delivered:
        raise typer.Exit(1)

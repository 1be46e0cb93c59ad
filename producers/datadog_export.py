"""PerformanceMonitor.export_to_datadog(): this process's metrics to a DogStatsD agent.

The specification's sendToDatadog() hands phase and total durations to Datadog; a Python
service has no browser RUM, so the same figures go to the agent's DogStatsD port as
gauges through the `datadog` package's client (the one streams/sinks/dogstatsd.py uses for
the fleet's figures): no hand-made datagrams. One call sends one datagram per field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from datadog.dogstatsd.base import DogStatsd

from producers.pipeline import Pipeline
from producers.shapes import PerformanceMetrics


def export_to_dogstatsd(
    metrics: PerformanceMetrics,
    pipeline: Pipeline,
    *,
    host: str,
    port: int,
    socket_path: str | None,
    namespace: str,
    tags: Mapping[str, str] | None,
) -> int:
    """Gauges `<namespace>.<field>` for every numeric field; returns the datagrams that left."""
    all_tags = [f"service:{pipeline.service}", f"env:{pipeline.settings.env}"]
    all_tags += [f"{k}:{v}" for k, v in (tags or {}).items()]
    # the client logs every unsent datagram; the SDK counts them instead
    logging.getLogger("datadog.dogstatsd").setLevel(logging.ERROR)
    client = DogStatsd(
        host=None if socket_path else host,
        port=None if socket_path else port,
        socket_path=socket_path,
        namespace=namespace,
        disable_buffering=True,
        disable_aggregation=True,
        disable_background_sender=True,
        disable_telemetry=False,  # only for its drop counter; never flushed (interval below)
        telemetry_min_flush_interval=10**12,
        origin_detection_enabled=False,
        socket_timeout=0,
        track_instance=False,
    )
    sent = 0
    try:
        for name, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            before = client.packets_dropped_writer
            client.gauge(name, value, tags=all_tags)
            sent += client.packets_dropped_writer == before
    except Exception as exc:  # reporting never raises into the caller
        pipeline.problems.report("datadog_export", f"export_to_datadog failed: {exc}")
    finally:
        client.close_socket()
    if not sent and any(isinstance(v, int | float) for v in metrics.values()):
        pipeline.problems.report(
            "datadog_export", f"no datagram reached DogStatsD at {socket_path or f'{host}:{port}'}"
        )
    return sent

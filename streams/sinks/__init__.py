"""Exporters to Datadog (DogStatsD, v2 series, events), GA4 and alert webhooks.

They run in their own process (`genpulse sinks`), fed from Kafka, so a slow or dead
endpoint never slows the worker. See docs/integrations.md.
"""

from streams.sinks.health import SinkStats, health_key, read_health
from streams.sinks.service import Sinks, open_sinks, print_health, serve
from streams.sinks.settings import SinkSettings

__all__ = [
    "SinkSettings",
    "SinkStats",
    "Sinks",
    "health_key",
    "open_sinks",
    "print_health",
    "read_health",
    "serve",
]

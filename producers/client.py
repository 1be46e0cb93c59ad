"""GenPulse: the one client a service embeds.

    from producers import GenPulse
    pulse = GenPulse(service="uvp-generator", bootstrap_servers="127.0.0.1:9092")
    pulse.events.track("generation_started", session_id=sid, user_id=uid)
    cost = pulse.costs.record_model_call("claude-3-5-sonnet-20241022", 1200, 400, session_id=sid)
    with pulse.performance.timer("render"):
        ...
    pulse.close()

Reporting calls never block and never raise; configuration mistakes (bad prices, bad
budget arguments) raise ValueError at once, with what to fix.
"""

from __future__ import annotations

import asyncio
import difflib
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from producers import attribution
from producers.collector import EventCollector
from producers.costs import Budget, CostTracker
from producers.performance import PerformanceMonitor
from producers.pipeline import Pipeline, Stats
from producers.pricing import PriceTable
from producers.quality import QualityTracker
from producers.sdk_settings import SdkSettings

if TYPE_CHECKING:
    import anthropic

AnthropicClientT = TypeVar("AnthropicClientT", "anthropic.Anthropic", "anthropic.AsyncAnthropic")


class GenPulse:
    performance: PerformanceMonitor
    costs: CostTracker
    quality: QualityTracker
    events: EventCollector
    budget: Budget

    def __init__(
        self,
        service: str | None = None,
        bootstrap_servers: str | None = None,
        *,
        settings: SdkSettings | None = None,
        **overrides: Any,
    ) -> None:
        """Settings come from `settings` (default: GENPULSE_* env vars) plus keyword overrides,
        e.g. GenPulse(service="api", flush_at=100, topic_prefix="staging")."""
        _check_names(overrides)
        base = settings if settings is not None else SdkSettings()
        if service is not None:
            overrides["service"] = service
        if bootstrap_servers is not None:
            overrides["kafka_bootstrap"] = bootstrap_servers
        self.settings = SdkSettings.model_validate({**base.model_dump(), **overrides})
        _check_compression(self.settings.compression)
        prices = PriceTable.load(self.settings.price_overlay)
        self._pipeline = Pipeline(self.settings, self.settings.service)
        self.performance = PerformanceMonitor(self._pipeline)
        self.costs = CostTracker(self._pipeline, prices)
        self.quality = QualityTracker(self._pipeline)
        self.events = EventCollector(self._pipeline)
        self.budget = self.costs.budget

    @classmethod
    def from_env(cls, **overrides: Any) -> GenPulse:
        """A client configured from GENPULSE_* environment variables (docs/configuration.md)."""
        return cls(**overrides)

    @property
    def service(self) -> str:
        return self.settings.service

    def session(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> AbstractContextManager[None]:
        """`with pulse.session(sid, uid):` reports inside the block default to that session
        and user (per thread and asyncio task; explicit arguments still win)."""
        return attribution.session(session_id, user_id)

    def instrument_anthropic(self, client: AnthropicClientT) -> AnthropicClientT:
        """Report every `messages.create` / `messages.stream` of an anthropic client: model
        calls with their tokens, streams, API errors and the client's retries
        (docs/integrations.md). Returns the same client; needs `pip install genpulse[anthropic]`.
        """
        from producers.integrations.anthropic import Reporter, deferring_to, instrument

        pipeline = self._pipeline
        reporter = Reporter(
            pipeline.emit,
            self.costs.record_model_call,
            pipeline.problems.report,
            deferring_to(pipeline.deferred),
        )
        return instrument(client, reporter)

    def stats(self) -> Stats:
        return self._pipeline.stats()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything reported so far (events and a metric batch); True when acknowledged."""
        return self._pipeline.flush(timeout)

    async def aflush(self, timeout: float | None = 10.0) -> bool:
        return await asyncio.to_thread(self._pipeline.flush, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush (up to `timeout`, default shutdown_timeout_s) and stop the sender."""
        return self._pipeline.close(timeout)

    def __enter__(self) -> GenPulse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_names(overrides: dict[str, Any]) -> None:
    """Unknown settings raise at once with the closest valid name (a typo is silent otherwise)."""
    valid = set(SdkSettings.model_fields)
    for name in overrides:
        if name not in valid:
            close = difflib.get_close_matches(name, sorted(valid), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"GenPulse() got an unknown setting {name!r}{hint} "
                "(every setting is in docs/configuration.md)"
            )


def _check_compression(name: str) -> None:
    from aiokafka import codec

    available = {
        "none": True,
        "gzip": codec.has_gzip(),
        "lz4": codec.has_lz4(),
        "zstd": codec.has_zstd(),
        "snappy": codec.has_snappy(),
    }
    if not available.get(name, False):
        raise ValueError(
            f"compression {name!r} needs the 'cramjam' package (pip install cramjam), "
            "or set GENPULSE_COMPRESSION=gzip"
        )

"""Model prices and exact call costs in integer nano-dollars (1 USD = 10**9 nano-dollars).

A call is priced by the price in force at its timestamp, looked up in this order:
  1. the operator's overlay (producers/price_overlay.py), from each price's effective time;
  2. the specification's tiers, for the bare names "haiku", "sonnet", "opus";
  3. the `genai-prices` package (producers/price_source.py), with its price history.
A model none of them knows is unpriced: `price_call` returns None and the caller counts it.

Every model id is resolved once into its periods (start time, rates); a call then costs a
dict read, a bisect when the model's price ever changed, and integer arithmetic.
docs/pricing.md says where prices come from, how to override them and how they round.
"""

from __future__ import annotations

from bisect import bisect_right
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from producers import price_source
from producers.price_overlay import PriceOverlay, load_overlay
from producers.price_rates import PricingError, Rates
from producers.price_source import EARLIEST_MS, Schedule, TimeOfDayPrices

__all__ = ["PriceTable", "PricedCall", "PricingError", "nanos_to_usd", "usd_to_nanos"]

SPEC_SOURCE = "spec-tier"
SPEC_VERSION = "1"
SPEC_PRICES_PER_MTOK: dict[str, dict[str, Decimal]] = {
    # The specification's table (USD per 1M tokens, input / output); the cache prices are
    # Anthropic's multipliers of the input price: 5-minute write 1.25x, 1-hour 2x, read 0.1x.
    tier: {
        "input": Decimal(inp),
        "output": Decimal(out),
        "cache_write": Decimal(inp) * Decimal("1.25"),
        "cache_write_1h": Decimal(inp) * 2,
        "cache_read": Decimal(inp) * Decimal("0.1"),
    }
    for tier, inp, out in (
        ("haiku", "0.80", "4.00"),
        ("sonnet", "3.00", "15.00"),
        ("opus", "15.00", "75.00"),
    )
}
TIERS: tuple[str, ...] = tuple(SPEC_PRICES_PER_MTOK)
"""Dashboard tiers; a model id belongs to the first whose name it contains."""

_MAX_CACHED_MODELS = 10_000


class PricedCall(NamedTuple):
    tier: str | None
    cost_nanousd: int
    price_source: str  # "overlay", "spec-tier" or "genai-prices"
    price_version: str  # overlay version@effective time, "1", or package version[@start date]


class ModelPrices:
    """One model id resolved: its dashboard tier and the price in force at any time."""

    __slots__ = ("_prices", "_starts", "tier")

    def __init__(self, tier: str | None, periods: Schedule) -> None:
        self.tier = tier
        self._starts = [start for start, _ in periods]
        self._prices = [price for _, price in periods]

    def rates_at(self, at_ms: int) -> Rates | None:
        """The price in force at epoch-ms `at_ms`, None when none covers the model then."""
        prices = self._prices
        price = prices[0] if len(prices) == 1 else prices[bisect_right(self._starts, at_ms) - 1]
        if isinstance(price, TimeOfDayPrices):
            return price.rates_at(at_ms)
        return price


class PriceTable:
    """Resolves model ids to the price in force at a time; safe to share between threads."""

    def __init__(self, overlay: PriceOverlay | None = None) -> None:
        self.overlay = overlay
        self._spec: dict[str, Schedule] = {
            tier: [(EARLIEST_MS, Rates([(-1, prices)], SPEC_SOURCE, SPEC_VERSION))]
            for tier, prices in SPEC_PRICES_PER_MTOK.items()
        }
        self._models: dict[str, ModelPrices] = {}
        price_source.preload()

    @classmethod
    def load(cls, overlay_path: str | Path | None = None) -> PriceTable:
        """The table with the overlay file at `overlay_path` (None: no overlay)."""
        return cls(None if overlay_path is None else load_overlay(overlay_path))

    def tier_for(self, model: str) -> str | None:
        """The dashboard tier of a model id (overlay's `tier`, else its family), or None."""
        return self.model(model).tier

    def price_call(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        cache_read_tokens: int = 0,
        at_ms: int,
    ) -> PricedCall | None:
        """Price one call at epoch-ms `at_ms`; None when no price covers the model then.

        `input_tokens` excludes cache reads and writes (as Anthropic's usage reports it);
        `cache_write_tokens` are 5-minute cache writes. Counts are ints >= 0.
        """
        resolved = self.model(model)
        rates = resolved.rates_at(at_ms)
        if rates is None:
            return None
        cost = rates.cost(
            input_tokens,
            output_tokens,
            cache_write_tokens,
            cache_write_1h_tokens,
            cache_read_tokens,
        )
        return PricedCall(resolved.tier, cost, rates.source, rates.version)

    def model(self, model: str) -> ModelPrices:
        """`model` resolved (once: later calls are a dict read)."""
        resolved = self._models.get(model)
        if resolved is not None:
            return resolved
        lowered = model.lower()
        base = self._spec.get(lowered) or price_source.schedule(model) or [(EARLIEST_MS, None)]
        overlaid = self.overlay.lookup(model) if self.overlay is not None else None
        tier = next((t for t in TIERS if t in lowered), None)
        periods = list(base)
        if overlaid is not None:
            tier = overlaid.tier or tier
            periods = _overlay_periods(base, overlaid.periods)
        resolved = ModelPrices(tier, periods)
        if len(self._models) >= _MAX_CACHED_MODELS:
            self._models.clear()
        self._models[model] = resolved
        return resolved


def _overlay_periods(base: Schedule, overlay: tuple[tuple[int, Rates], ...]) -> Schedule:
    """Merge two step functions of time: from its first effective time, the overlay wins."""
    base_starts = [start for start, _ in base]
    overlay_starts = [start for start, _ in overlay]
    merged: Schedule = []
    for start in sorted(set(base_starts) | set(overlay_starts)):
        i = bisect_right(overlay_starts, start) - 1
        if i >= 0:
            merged.append((start, overlay[i][1]))
        else:
            merged.append((start, base[bisect_right(base_starts, start) - 1][1]))
    return merged


def nanos_to_usd(nanos: int) -> Decimal:
    """Exact USD amount of an integer nano-dollar amount."""
    return Decimal(nanos).scaleb(-9)


def usd_to_nanos(amount: object, what: str = "amount") -> int:
    """Exact nano-dollars of a USD amount (Decimal, int, str or float via its repr)."""
    if isinstance(amount, bool) or not isinstance(amount, int | float | str | Decimal):
        raise ValueError(f"{what} {amount!r} is not a number of USD")
    try:
        usd = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"{what} {amount!r} is not a number of USD") from None
    if not usd.is_finite():
        raise ValueError(f"{what} {amount!r} must be finite")
    nanos = usd.scaleb(9)
    if nanos != nanos.to_integral_value():
        raise ValueError(f"{what} {amount!r} has more than 9 decimal places (nano-dollars)")
    return int(nanos)

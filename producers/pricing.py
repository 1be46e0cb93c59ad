"""Model prices and exact call costs in integer nano-dollars (1 USD = 10**9 nano-dollars).

Prices are configured in USD per 1M tokens, the unit providers publish, and converted once
into whole nano-dollars per token. A price that is not a whole number of nano-dollars per
token (more than three decimals per 1M tokens) is refused at configuration time, so every
cost after that is plain integer arithmetic: the sum of per-call costs always equals the
cost of the summed tokens.

Full model ids ("claude-3-5-sonnet-20241022") map to a tier ("sonnet") through glob
patterns, matched case-insensitively in order.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

NANOS_PER_USD = 10**9
TOKENS_PER_PRICE_UNIT = 1_000_000
NANOS_PER_TOKEN_PER_USD_PER_MILLION = NANOS_PER_USD // TOKENS_PER_PRICE_UNIT  # 1000

CACHE_WRITE_MULTIPLIER = Decimal("1.25")
CACHE_READ_MULTIPLIER = Decimal("0.1")

DEFAULT_PRICES_PER_MILLION: dict[str, dict[str, str]] = {
    "haiku": {"input": "0.80", "output": "4.00"},
    "sonnet": {"input": "3.00", "output": "15.00"},
    "opus": {"input": "15.00", "output": "75.00"},
}
"""USD per 1M tokens; cache_write / cache_read default to 1.25x / 0.1x the input price."""

DEFAULT_TIER_PATTERNS: dict[str, list[str]] = {
    "haiku": ["haiku", "*haiku*"],
    "sonnet": ["sonnet", "*sonnet*"],
    "opus": ["opus", "*opus*"],
}

_MAX_CACHED_MODELS = 10_000


class PricingError(ValueError):
    """The price table or tier patterns are misconfigured; the message says what to fix."""


@dataclass(frozen=True)
class TierPrice:
    """Whole nano-dollars per token, for each kind of token one tier bills."""

    input: int
    output: int
    cache_write: int
    cache_read: int

    def cost_nanousd(
        self, input_tokens: int, output_tokens: int, cache_write_tokens: int, cache_read_tokens: int
    ) -> int:
        return (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_write_tokens * self.cache_write
            + cache_read_tokens * self.cache_read
        )


def nanos_per_token(usd_per_million: object, what: str) -> int:
    """Convert a USD-per-1M-tokens price to whole nano-dollars per token, or explain why not."""
    if isinstance(usd_per_million, bool) or not isinstance(
        usd_per_million, int | float | str | Decimal
    ):
        raise PricingError(f"{what}: price {usd_per_million!r} is not a number")
    try:
        price = Decimal(str(usd_per_million))
    except InvalidOperation:
        raise PricingError(f"{what}: price {usd_per_million!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise PricingError(f"{what}: price {usd_per_million!r} must be a finite number >= 0")
    nanos = price * NANOS_PER_TOKEN_PER_USD_PER_MILLION
    if nanos != nanos.to_integral_value():
        raise PricingError(
            f"{what}: {price} USD per 1M tokens is {nanos} nano-dollars per token; prices must "
            "be whole nano-dollars per token (at most 3 decimal places per 1M tokens)"
        )
    return int(nanos)


def tier_price(tier: str, spec: Mapping[str, object]) -> TierPrice:
    """Build one tier's prices from {"input", "output", ["cache_write"], ["cache_read"]}."""
    unknown = set(spec) - {"input", "output", "cache_write", "cache_read"}
    if unknown:
        raise PricingError(
            f"tier {tier!r}: unknown price keys {sorted(unknown)}; "
            "use input, output, cache_write, cache_read (USD per 1M tokens)"
        )
    for required in ("input", "output"):
        if required not in spec:
            raise PricingError(f"tier {tier!r}: missing the {required!r} price (USD per 1M tokens)")
    input_nanos = nanos_per_token(spec["input"], f"tier {tier!r} input")
    derived = {
        "cache_write": input_nanos * CACHE_WRITE_MULTIPLIER,
        "cache_read": input_nanos * CACHE_READ_MULTIPLIER,
    }
    cache: dict[str, int] = {}
    for kind, default_nanos in derived.items():
        if kind in spec:
            cache[kind] = nanos_per_token(spec[kind], f"tier {tier!r} {kind}")
        elif default_nanos != default_nanos.to_integral_value():
            raise PricingError(
                f"tier {tier!r} {kind}: the default ({kind} = "
                f"{derived[kind] / input_nanos}x input) is {default_nanos} nano-dollars per "
                f"token, not a whole number; set {kind} explicitly (USD per 1M tokens)"
            )
        else:
            cache[kind] = int(default_nanos)
    return TierPrice(
        input=input_nanos,
        output=nanos_per_token(spec["output"], f"tier {tier!r} output"),
        cache_write=cache["cache_write"],
        cache_read=cache["cache_read"],
    )


class PriceTable:
    """Tier prices plus the patterns that map model ids to tiers; immutable once built."""

    def __init__(
        self,
        prices_per_million: Mapping[str, Mapping[str, object]] | None = None,
        tier_patterns: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        prices = DEFAULT_PRICES_PER_MILLION if prices_per_million is None else prices_per_million
        patterns = DEFAULT_TIER_PATTERNS if tier_patterns is None else tier_patterns
        self.tiers: dict[str, TierPrice] = {
            tier: tier_price(tier, spec) for tier, spec in prices.items()
        }
        self._patterns: list[tuple[str, str]] = []
        for tier, globs in patterns.items():
            if tier not in self.tiers:
                raise PricingError(
                    f"tier pattern for {tier!r}, which has no price; known tiers: "
                    f"{sorted(self.tiers)}"
                )
            if isinstance(globs, str):
                raise PricingError(f"patterns of tier {tier!r} must be a list of globs")
            self._patterns.extend((glob.lower(), tier) for glob in globs)
        for tier in self.tiers:  # a tier's own name always maps to it
            self._patterns.append((tier.lower(), tier))
        self._model_tiers: dict[str, str | None] = {}

    def tier_for(self, model: str) -> str | None:
        """The tier a model id belongs to, or None when no pattern matches."""
        if model in self._model_tiers:
            return self._model_tiers[model]
        lowered = model.lower()
        tier = next(
            (tier for glob, tier in self._patterns if fnmatch.fnmatchcase(lowered, glob)), None
        )
        if len(self._model_tiers) >= _MAX_CACHED_MODELS:
            self._model_tiers.clear()
        self._model_tiers[model] = tier
        return tier

    def cost_nanousd(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_write_tokens: int = 0,
        cache_read_tokens: int = 0,
    ) -> tuple[str, int] | None:
        """(tier, cost in nano-dollars) for one call, or None for a model of no known tier."""
        tier = self.tier_for(model)
        if tier is None:
            return None
        price = self.tiers[tier]
        return tier, price.cost_nanousd(
            input_tokens, output_tokens, cache_write_tokens, cache_read_tokens
        )


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

"""Exact rates of one price in force, and the cost of one call under it, in nano-dollars.

Providers publish USD per 1M tokens. `Rates` turns a price into integers once: every rate
is scaled by the same power of ten, the smallest that makes each one whole, so a call's
cost is a sum of integer products. When every rate is a whole number of nano-dollars per
token (all current Anthropic prices are) that sum is the cost, exactly; otherwise it is
rounded once per call to whole nano-dollars, half to even.

A price may step up for long-context calls: above a number of input tokens (input plus
cache writes and reads, as providers count it) every token of the call is billed at the
higher rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, Inexact, localcontext

TOKEN_KINDS: tuple[str, ...] = ("input", "output", "cache_write", "cache_write_1h", "cache_read")
"""Per-token rates, USD per 1M tokens; `cache_write` is the 5-minute cache write."""

NANOS_PER_USD = 10**9
_NANOS_PER_TOKEN_PER_USD_PER_MTOK = Decimal(1000)


class PricingError(ValueError):
    """Prices are misconfigured (an overlay file, a price); the message says what to fix."""


class Rates:
    """Integer rates of one price, its long-context steps, and which price it is."""

    __slots__ = ("_base", "_divisor", "_steps", "source", "version")
    _base: tuple[int, ...]
    _divisor: int
    _steps: tuple[tuple[int, tuple[int, ...]], ...]
    source: str
    version: str

    def __init__(
        self,
        bands: Sequence[tuple[int, Mapping[str, Decimal]]],
        source: str,
        version: str,
    ) -> None:
        """`bands`: (above this many input tokens, {kind: USD per 1M tokens}), the first at -1.

        A band may also hold "per_call": a fixed fee per request in USD.
        """
        if not bands or bands[0][0] != -1:
            raise PricingError("the first band of a price must start at -1 input tokens")
        with localcontext() as exact:
            exact.prec = 200
            exact.traps[Inexact] = True
            try:
                nanos = [
                    [rates[kind] * _NANOS_PER_TOKEN_PER_USD_PER_MTOK for kind in TOKEN_KINDS]
                    + [rates.get("per_call", Decimal(0)) * NANOS_PER_USD]
                    for _, rates in bands
                ]
                places = max(_decimal_places(value) for row in nanos for value in row)
                scale = 10**places
                scaled = [tuple(int(value * scale) for value in row) for row in nanos]
            except Inexact:
                raise PricingError(f"{source} {version}: a price has too many digits") from None
        self._divisor = scale
        self._base = scaled[0]
        self._steps = tuple(
            (above, row) for (above, _), row in zip(bands[1:], scaled[1:], strict=True)
        )
        self.source = source
        self.version = version

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_write: int,
        cache_write_1h: int,
        cache_read: int,
    ) -> int:
        """Nano-dollars of one call (token counts are ints >= 0)."""
        rates = self._base
        if self._steps:
            total_input = input_tokens + cache_write + cache_write_1h + cache_read
            for above, step in self._steps:
                if total_input <= above:
                    break
                rates = step
        scaled = (
            input_tokens * rates[0]
            + output_tokens * rates[1]
            + cache_write * rates[2]
            + cache_write_1h * rates[3]
            + cache_read * rates[4]
            + rates[5]
        )
        divisor = self._divisor
        if divisor == 1:
            return scaled
        whole, rest = divmod(scaled, divisor)
        twice = 2 * rest
        if twice > divisor or (twice == divisor and whole & 1):
            whole += 1
        return whole


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    if not isinstance(exponent, int):
        raise PricingError(f"price {value} is not a finite number")
    return max(0, -exponent)

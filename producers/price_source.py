"""Model prices from the `genai-prices` package, with the dates each price took effect.

genai-prices (maintained by Pydantic, MIT) keeps every major provider's model prices,
their history (a price with the date it starts), 5-minute and 1-hour cache writes, cache
reads and long-context tiers. Only the data bundled with the installed package is read:
its `UpdatePrices` fetcher is never started, so a price version is the package version
and a past day is always priced the same. Prices move by upgrading the package.

`schedule(model)` turns one model's prices into `Rates` once, as a list of periods; a
caller then finds the price in force at a timestamp by bisecting the period starts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from importlib.metadata import version
from typing import TYPE_CHECKING

from producers.price_rates import Rates

if TYPE_CHECKING:
    from genai_prices import types

SOURCE = "genai-prices"
VERSION = version("genai-prices")
EARLIEST_MS = -(2**63)
"""Start of a model's first period: before any date the source knows."""

Schedule = list[tuple[int, "Rates | TimeOfDayPrices | None"]]


class TimeOfDayPrices:
    """A price that changes within each day (off-peak hours): resolved per call."""

    __slots__ = ("_by_price", "_model")

    def __init__(self, model: types.ModelInfo) -> None:
        self._model = model
        self._by_price: dict[int, Rates | None] = {}

    def rates_at(self, at_ms: int) -> Rates | None:
        price = self._model.get_prices(datetime.fromtimestamp(at_ms / 1000, UTC))
        key = id(price)
        if key not in self._by_price:
            self._by_price[key] = token_rates(price, VERSION)
        return self._by_price[key]


def schedule(model: str) -> Schedule | None:
    """The periods of `model`'s price as (start ms, rates), or None when the source lacks it."""
    info = _model_info(model)
    if info is None:
        return None
    from genai_prices import types

    if isinstance(info.prices, types.ModelPrice):
        return [(EARLIEST_MS, token_rates(info.prices, VERSION))]
    constraints = [conditional.constraint for conditional in info.prices]
    if any(isinstance(c, types.TimeOfDateConstraint) for c in constraints):
        return [(EARLIEST_MS, TimeOfDayPrices(info))]
    starts = sorted({c.start_date for c in constraints if isinstance(c, types.StartDateConstraint)})
    periods: Schedule = []
    for start in [date.min, *starts]:
        moment = datetime.combine(start, time(), UTC)
        price = info.get_prices(moment)  # the source's own choice of the price in force
        began = next(
            (
                c.constraint.start_date
                for c in info.prices
                if c.prices is price and isinstance(c.constraint, types.StartDateConstraint)
            ),
            None,
        )
        label = VERSION if began is None else f"{VERSION}@{began.isoformat()}"
        start_ms = EARLIEST_MS if start == date.min else int(moment.timestamp() * 1000)
        periods.append((start_ms, token_rates(price, label)))
    return periods


def token_rates(price: types.ModelPrice, label: str) -> Rates | None:
    """`Rates` of one source price, None when it bills no tokens (audio hours, images…).

    Token kinds the price does not name are billed as genai-prices bills them: a 1-hour
    cache write at the cache-write price, a cache write or read at the input price.
    """
    from genai_prices import types

    def read(key: str) -> Decimal | types.TieredPrices | None:
        value: Decimal | types.TieredPrices | None = getattr(price, key)
        return value

    input_ = read("input_mtok")
    output = read("output_mtok")
    write = read("cache_write_mtok")
    write_5m = read("cache_write_5m_mtok")
    write_1h = read("cache_write_1h_mtok")
    cache_read = read("cache_read_mtok")
    if all(p is None for p in (input_, output, write, write_5m, write_1h, cache_read)):
        return None
    by_kind = {
        "input": input_,
        "output": output,
        "cache_write": _first(write_5m, write, input_),
        "cache_write_1h": _first(write_1h, write, input_),
        "cache_read": _first(cache_read, input_),
    }
    per_k_requests = read("requests_kcount")
    thresholds = sorted(
        {
            tier.start
            for p in (*by_kind.values(), per_k_requests)
            if isinstance(p, types.TieredPrices)
            for tier in p.tiers
        }
    )
    bands = [
        (
            above,
            {kind: _at(p, above) for kind, p in by_kind.items()}
            | {"per_call": _at(per_k_requests, above) / 1000},
        )
        for above in (-1, *thresholds)
    ]
    return Rates(bands, SOURCE, label)


def _first(
    *prices: Decimal | types.TieredPrices | None,
) -> Decimal | types.TieredPrices | None:
    return next((p for p in prices if p is not None), None)


def _at(price: Decimal | types.TieredPrices | None, above: int) -> Decimal:
    """The price per 1M tokens of a call whose input passes `above` tokens (-1: any call)."""
    if price is None:
        return Decimal(0)
    if isinstance(price, Decimal):
        return price
    applicable = price.base
    for tier in price.tiers:  # ascending: the last tier the call passes applies to all
        if tier.start <= above:
            applicable = tier.price
    return applicable


def preload() -> None:
    """Import the package's price data now (a few tenths of a second, once per process), so
    that a caller's first call of a new model does not wait for it."""
    from genai_prices import data_snapshot

    data_snapshot.get_snapshot()


def _model_info(model: str) -> types.ModelInfo | None:
    from genai_prices import Usage, calc_price

    try:
        return calc_price(Usage(), model).model
    except (LookupError, ValueError):
        return None

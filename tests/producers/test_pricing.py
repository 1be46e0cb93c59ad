"""Exact model-call costs: the table, tier patterns, configuration errors, additivity."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.pricing import (
    PriceTable,
    PricingError,
    nanos_per_token,
    nanos_to_usd,
    usd_to_nanos,
)

TABLE = PriceTable()

# (tier, input, output, cache write, cache read) in USD per 1M tokens
SEED_PRICES = [
    ("haiku", "0.80", "4.00", "1.00", "0.08"),
    ("sonnet", "3.00", "15.00", "3.75", "0.30"),
    ("opus", "15.00", "75.00", "18.75", "1.50"),
]


@pytest.mark.parametrize(("tier", "inp", "out", "write", "read"), SEED_PRICES)
@pytest.mark.parametrize("kind", ["input", "output", "cache_write", "cache_read"])
def test_one_million_tokens_of_each_kind_cost_the_table_price(
    tier: str, inp: str, out: str, write: str, read: str, kind: str
) -> None:
    tokens = {"input": 0, "output": 0, "cache_write": 0, "cache_read": 0, kind: 1_000_000}
    expected = {"input": inp, "output": out, "cache_write": write, "cache_read": read}[kind]
    priced = TABLE.cost_nanousd(
        tier, tokens["input"], tokens["output"], tokens["cache_write"], tokens["cache_read"]
    )
    assert priced is not None
    assert priced[0] == tier
    assert nanos_to_usd(priced[1]) == Decimal(expected)


def test_a_mixed_call_is_priced_to_the_nano_dollar() -> None:
    priced = TABLE.cost_nanousd("claude-3-5-sonnet-20241022", 1234, 567, 89, 1011)
    assert priced == ("sonnet", 1234 * 3000 + 567 * 15000 + 89 * 3750 + 1011 * 300)
    assert nanos_to_usd(priced[1]) == Decimal("0.01284405")


@pytest.mark.parametrize(
    ("model", "tier"),
    [
        ("claude-3-5-sonnet-20241022", "sonnet"),
        ("claude-3-5-haiku-20241022", "haiku"),
        ("claude-3-opus-20240229", "opus"),
        ("claude-opus-4-1", "opus"),
        ("Claude-Sonnet-4", "sonnet"),
        ("haiku", "haiku"),
        ("gpt-4o", None),
    ],
)
def test_full_model_ids_map_to_tiers(model: str, tier: str | None) -> None:
    assert TABLE.tier_for(model) == tier


def test_unknown_model_has_no_price() -> None:
    assert TABLE.cost_nanousd("gpt-4o", 10, 10) is None


def test_tier_patterns_and_prices_are_configurable() -> None:
    table = PriceTable(
        {"small": {"input": "0.25", "output": "1.25", "cache_write": "0.30", "cache_read": "0.03"}},
        {"small": ["acme-small-*"]},
    )
    assert table.cost_nanousd("acme-small-2", 1_000_000, 0, 1_000_000, 1_000_000) == (
        "small",
        250_000_000 + 300_000_000 + 30_000_000,
    )
    assert table.tier_for("claude-3-5-sonnet") is None


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("0.0005", "whole nano-dollars per token"),
        ("-1", ">= 0"),
        ("abc", "not a number"),
        ("NaN", "finite"),
    ],
)
def test_bad_prices_fail_at_configuration_time(price: str, message: str) -> None:
    with pytest.raises(PricingError, match=message):
        PriceTable({"t": {"input": price, "output": "1"}})


def test_derived_cache_price_that_is_not_whole_nanos_is_refused() -> None:
    with pytest.raises(PricingError, match=r"cache_read.*set cache_read explicitly"):
        # 0.1 x 1 nano-dollar per token
        PriceTable({"t": {"input": "0.004", "output": "1", "cache_write": "0.005"}})


def test_patterns_for_an_unpriced_tier_are_refused() -> None:
    with pytest.raises(PricingError, match="no price"):
        PriceTable(tier_patterns={"mini": ["*mini*"]})


def test_usd_conversions_are_exact() -> None:
    assert nanos_per_token("3.00", "x") == 3000
    assert usd_to_nanos("25.00") == 25_000_000_000
    assert usd_to_nanos(0.1) == 100_000_000
    with pytest.raises(ValueError, match="9 decimal"):
        usd_to_nanos("0.0000000001")


calls = st.lists(
    st.tuples(
        st.sampled_from(["claude-3-5-haiku", "claude-3-5-sonnet-x", "claude-opus-4"]),
        *(st.integers(min_value=0, max_value=10**9) for _ in range(4)),
    ),
    min_size=1,
    max_size=50,
)


@given(calls)
def test_sum_of_call_costs_equals_cost_of_summed_tokens(
    batch: list[tuple[str, int, int, int, int]],
) -> None:
    for tier in ("haiku", "sonnet", "opus"):
        mine = [call for call in batch if TABLE.tier_for(call[0]) == tier]
        per_call = sum(TABLE.cost_nanousd(*call)[1] for call in mine)  # type: ignore[index]
        summed = [sum(call[i] for call in mine) for i in range(1, 5)]
        together = TABLE.cost_nanousd(tier, *summed)
        assert together is not None
        assert per_call == together[1]
        assert sum((nanos_to_usd(TABLE.cost_nanousd(*c)[1]) for c in mine), Decimal(0)) == (  # type: ignore[index]
            nanos_to_usd(together[1])
        )

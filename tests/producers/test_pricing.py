"""Model prices: spec tiers, genai-prices models and history, overlays, rounding, replays.

Expected costs are worked out here from the per-token prices Anthropic publishes (USD per
1M tokens, typed into each test), not by the code under test.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path

import genai_prices
import pytest
from genai_prices import Usage, calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.price_overlay import overlay_from_object
from producers.pricing import PricedCall, PriceTable, nanos_to_usd, usd_to_nanos


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def _dt(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC)


TABLE = PriceTable()
DAY_MS = 86_400_000
AT = int(datetime(2026, 12, 1, 9, 30, tzinfo=UTC).timestamp() * 1000)
PACKAGE = genai_prices.__version__


def nanos_per_token(usd_per_mtok: str) -> int:
    """USD per 1M tokens as published -> whole nano-dollars per token (all these are whole)."""
    value = Decimal(usd_per_mtok) * 1000
    assert value == value.to_integral_value()
    return int(value)


def expected(rates: tuple[str, str, str, str, str], tokens: tuple[int, ...]) -> int:
    """Cost of (input, output, 5-min write, 1-hour write, read) tokens at published rates."""
    return sum(n * nanos_per_token(r) for n, r in zip(tokens, rates, strict=True))


Tokens = tuple[int, int, int, int, int]


def price(
    model: str, tokens: Tokens, at_ms: int = AT, table: PriceTable = TABLE
) -> PricedCall | None:
    i, o, w, w1h, r = tokens
    return table.price_call(
        model,
        input_tokens=i,
        output_tokens=o,
        cache_write_tokens=w,
        cache_write_1h_tokens=w1h,
        cache_read_tokens=r,
        at_ms=at_ms,
    )


# ---- the specification's tiers ---------------------------------------------------------

# (tier, input, output, 5-min cache write, 1-hour cache write, cache read), USD per 1M tokens
SPEC = [
    ("haiku", "0.80", "4.00", "1.00", "1.60", "0.08"),
    ("sonnet", "3.00", "15.00", "3.75", "6.00", "0.30"),
    ("opus", "15.00", "75.00", "18.75", "30.00", "1.50"),
]


@pytest.mark.parametrize(("tier", "inp", "out", "write", "write_1h", "read"), SPEC)
@pytest.mark.parametrize("kind", range(5))
def test_one_million_tokens_of_each_kind_cost_the_spec_tier_price(
    tier: str, inp: str, out: str, write: str, write_1h: str, read: str, kind: int
) -> None:
    tokens = tuple(1_000_000 if i == kind else 0 for i in range(5))
    priced = price(tier.capitalize(), tokens)  # type: ignore[arg-type]
    assert priced is not None
    assert (priced.tier, priced.price_source, priced.price_version) == (tier, "spec-tier", "1")
    assert nanos_to_usd(priced.cost_nanousd) == Decimal((inp, out, write, write_1h, read)[kind])


# ---- models priced by genai-prices -----------------------------------------------------

MIXED = (1234, 567, 89, 40, 1011)


@pytest.mark.parametrize(
    ("model", "tier", "rates"),
    [
        ("claude-opus-4-5", "opus", ("5", "25", "6.25", "10", "0.50")),
        ("claude-opus-4-5-20251101", "opus", ("5", "25", "6.25", "10", "0.50")),
        ("claude-haiku-4-5", "haiku", ("1", "5", "1.25", "2", "0.10")),
        ("claude-sonnet-4-5", "sonnet", ("3", "15", "3.75", "6", "0.30")),
        ("claude-3-5-haiku-20241022", "haiku", ("0.80", "4", "1", "1.60", "0.08")),
    ],
)
def test_current_models_cost_their_list_price(
    model: str, tier: str, rates: tuple[str, str, str, str, str]
) -> None:
    priced = price(model, MIXED)
    assert priced is not None
    assert priced.cost_nanousd == expected(rates, MIXED)
    assert (priced.tier, priced.price_source, priced.price_version) == (
        tier,
        "genai-prices",
        PACKAGE,
    )


def test_a_one_hour_cache_write_costs_twice_the_input_price() -> None:
    one_hour = price("claude-opus-4-5", (0, 0, 0, 1_000_000, 0))
    five_minutes = price("claude-opus-4-5", (0, 0, 1_000_000, 0, 0))
    assert one_hour is not None and five_minutes is not None
    assert nanos_to_usd(one_hour.cost_nanousd) == Decimal("10")
    assert nanos_to_usd(five_minutes.cost_nanousd) == Decimal("6.25")


SONNET_45 = ("3", "15", "3.75", "6", "0.30")
SONNET_45_LONG = ("6", "22.50", "7.50", "12", "0.60")  # every token, once input > 200K


@pytest.mark.parametrize(
    ("tokens", "rates"),
    [
        ((150_000, 4_000, 20_000, 10_000, 20_000), SONNET_45),  # 200,000 input: not above
        ((150_001, 4_000, 20_000, 10_000, 20_000), SONNET_45_LONG),
        ((1, 4_000, 0, 0, 200_000), SONNET_45_LONG),  # cache reads count as input
        ((190_000, 8_000, 0, 0, 0), SONNET_45),
    ],
)
def test_sonnet_4_5_switches_to_its_long_context_rates_above_200k_input_tokens(
    tokens: Tokens, rates: tuple[str, str, str, str, str]
) -> None:
    priced = price("claude-sonnet-4-5", tokens)
    assert priced is not None
    assert priced.cost_nanousd == expected(rates, tokens)


def test_the_source_s_price_history_prices_each_call_at_its_date() -> None:
    # claude-opus-4-6 had a long-context rate (input 10 above 200K) until 2026-03-13
    tokens = (250_000, 0, 0, 0, 0)
    before = price("claude-opus-4-6", tokens, at_ms=_ms(2026, 3, 12, 23, 59))
    after = price("claude-opus-4-6", tokens, at_ms=_ms(2026, 3, 13))
    assert before is not None and after is not None
    assert before.cost_nanousd == 250_000 * nanos_per_token("10")
    assert after.cost_nanousd == 250_000 * nanos_per_token("5")
    assert before.price_version == PACKAGE
    assert after.price_version == f"{PACKAGE}@2026-03-13"


def test_an_unknown_model_has_no_price_but_keeps_its_family_tier() -> None:
    assert price("mystery-model", MIXED) is None
    assert price("claude-haiku-9-9", MIXED) is None
    assert TABLE.tier_for("claude-haiku-9-9") == "haiku"
    assert TABLE.tier_for("mystery-model") is None


def test_other_providers_models_are_priced_without_a_tier() -> None:
    priced = price("gpt-4o", (1_000_000, 0, 0, 0, 0))
    assert priced is not None and priced.tier is None and priced.price_source == "genai-prices"
    assert priced.cost_nanousd > 0


ORACLE_MODELS = sorted(
    {
        m.id
        for p in genai_prices.data_snapshot.get_snapshot().providers
        if p.id in ("anthropic", "openai", "deepseek", "google", "mistral")
        for m in p.models
    }
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ORACLE_MODELS),
    st.tuples(*(st.integers(0, 150_000) for _ in range(5))),
    st.integers(_ms(2024, 1, 1), _ms(2027, 12, 31)),
)
def test_every_call_costs_what_genai_prices_own_calculator_says(
    model: str, tokens: Tokens, at_ms: int
) -> None:
    i, o, w, w1h, r = tokens
    usage = Usage(
        input_tokens=i + w + w1h + r,  # genai-prices counts cached tokens inside input
        output_tokens=o,
        cache_write_tokens=w + w1h,
        cache_write_1h_tokens=w1h,
        cache_read_tokens=r,
    )
    try:
        oracle = calc_price(usage, model, genai_request_timestamp=_dt(at_ms)).total_price
    except (LookupError, ValueError):
        return  # the oracle cannot price this usage for this model either way
    priced = price(model, tokens, at_ms=at_ms)
    if priced is None:  # no token prices at all (audio, images): the oracle bills nothing
        assert oracle == 0
        return
    exact = (oracle * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    assert priced.cost_nanousd == int(exact)


# ---- overlays --------------------------------------------------------------------------


def overlay(tmp_path: Path, models: dict[str, object], version: str = "ops-1") -> PriceTable:
    file = tmp_path / "prices.json"
    file.write_text(json.dumps({"version": version, "models": models}))
    return PriceTable.load(file)


def test_an_overlay_overrides_a_model_from_its_effective_time(tmp_path: Path) -> None:
    table = overlay(
        tmp_path,
        {
            "claude-opus-4-5": {
                "prices": [
                    {"effective": "2026-12-01T00:00:00Z", "input": "4.50", "output": "22.50"}
                ]
            }
        },
    )
    start = _ms(2026, 12, 1)
    before = price("claude-opus-4-5", MIXED, at_ms=start - 1, table=table)
    after = price("claude-opus-4-5", MIXED, at_ms=start, table=table)
    assert before is not None and after is not None
    assert before.cost_nanousd == expected(("5", "25", "6.25", "10", "0.50"), MIXED)
    assert before.price_source == "genai-prices"
    # cache prices left out follow the input price: 1.25x, 2x, 0.1x
    assert after.cost_nanousd == expected(("4.50", "22.50", "5.625", "9", "0.45"), MIXED)
    assert (after.tier, after.price_source, after.price_version) == (
        "opus",
        "overlay",
        "ops-1@2026-12-01T00:00:00Z",
    )
    # the rest of the table is untouched
    assert price("claude-haiku-4-5", MIXED, table=table) == price("claude-haiku-4-5", MIXED)


def test_an_overlay_adds_models_by_glob_with_a_tier_and_long_context(tmp_path: Path) -> None:
    table = overlay(
        tmp_path,
        {
            "acme-mini-*": {
                "tier": "haiku",
                "prices": [
                    {
                        "effective": "2020-01-01",
                        "input": "0.10",
                        "output": "0.40",
                        "cache_read": "0.01",
                        "long_context": {
                            "above_input_tokens": 100_000,
                            "input": "0.20",
                            "output": "0.80",
                        },
                    }
                ],
            },
            "acme-mini-exact": {"prices": [{"effective": "2020-01-01", "input": 1, "output": 2}]},
        },
    )
    small = (1000, 1000, 100, 10, 500)
    priced = price("ACME-mini-2", small, table=table)
    assert priced is not None and priced.tier == "haiku"
    assert priced.cost_nanousd == expected(("0.10", "0.40", "0.125", "0.20", "0.01"), small)
    large = (100_000, 1000, 0, 0, 1)
    long_priced = price("acme-mini-2", large, table=table)
    assert long_priced is not None
    assert long_priced.cost_nanousd == expected(("0.20", "0.80", "0.25", "0.40", "0.02"), large)
    exact = price("acme-mini-exact", (1_000_000, 0, 0, 0, 0), table=table)
    assert exact is not None and exact.cost_nanousd == 10**9 and exact.tier is None
    assert price("acme-mini-2", small, at_ms=_ms(2019, 12, 31), table=table) is None


def test_an_overlay_can_reprice_a_spec_tier(tmp_path: Path) -> None:
    table = overlay(
        tmp_path, {"sonnet": {"prices": [{"effective": "2000-01-01", "input": 2, "output": 10}]}}
    )
    priced = price("sonnet", (1_000_000, 1_000_000, 0, 0, 0), table=table)
    assert priced is not None and priced.cost_nanousd == 12 * 10**9 and priced.tier == "sonnet"


# ---- history: a price change at T, replays ---------------------------------------------

T = _ms(2026, 12, 2, 12)  # noon of the second day


def _calls(seed: int = 7) -> list[tuple[int, Tokens]]:
    rng = random.Random(seed)
    start = _ms(2026, 12, 1)
    return [
        (
            rng.randrange(start, start + 3 * DAY_MS),
            tuple(rng.randrange(0, 50_000) for _ in range(5)),  # type: ignore[misc]
        )
        for _ in range(400)
    ]


CALLS = _calls()
OLD = {"effective": "2026-01-01", "input": "0.10", "output": "0.40"}
NEW = {"effective": "2026-12-02T12:00:00Z", "input": "0.20", "output": "0.80"}


def daily_totals(table: PriceTable, calls: list[tuple[int, Tokens]]) -> dict[int, int]:
    totals: Counter[int] = Counter()
    for at_ms, tokens in calls:
        priced = price("acme-mini", tokens, at_ms=at_ms, table=table)
        assert priced is not None
        totals[at_ms // DAY_MS] += priced.cost_nanousd
    return dict(totals)


def test_a_price_change_at_t_prices_calls_before_and_after_differently(tmp_path: Path) -> None:
    table = overlay(tmp_path, {"acme-mini": {"prices": [OLD, NEW]}})
    tokens = (1000, 1000, 0, 0, 0)
    before = price("acme-mini", tokens, at_ms=T - 1, table=table)
    after = price("acme-mini", tokens, at_ms=T, table=table)
    assert before is not None and after is not None
    assert (before.cost_nanousd, after.cost_nanousd) == (500_000, 1_000_000)
    assert before.price_version == "ops-1@2026-01-01T00:00:00Z"
    assert after.price_version == "ops-1@2026-12-02T12:00:00Z"


@settings(max_examples=20, deadline=None)
@given(st.randoms(use_true_random=False))
def test_a_replay_in_any_order_gives_the_same_daily_totals(
    tmp_path_factory: pytest.TempPathFactory, rng: random.Random
) -> None:
    tmp = tmp_path_factory.mktemp("replay")
    first = daily_totals(overlay(tmp, {"acme-mini": {"prices": [OLD, NEW]}}), CALLS)
    replayed = list(CALLS)
    rng.shuffle(replayed)
    again = daily_totals(overlay(tmp, {"acme-mini": {"prices": [NEW, OLD]}}), replayed)
    assert again == first
    # a later price, added after the fact, leaves every past day as it was
    later = {"effective": "2027-01-01", "input": "9", "output": "9"}
    assert daily_totals(overlay(tmp, {"acme-mini": {"prices": [OLD, NEW, later]}}), CALLS) == first


def test_days_before_a_price_change_keep_their_cost(tmp_path: Path) -> None:
    unchanged = daily_totals(overlay(tmp_path, {"acme-mini": {"prices": [OLD]}}), CALLS)
    changed = daily_totals(overlay(tmp_path, {"acme-mini": {"prices": [OLD, NEW]}}), CALLS)
    first_day, second_day, third_day = sorted(changed)
    assert changed[first_day] == unchanged[first_day]
    assert unchanged[second_day] < changed[second_day] < 2 * unchanged[second_day]
    assert changed[third_day] == 2 * unchanged[third_day]


# ---- exactness and rounding ------------------------------------------------------------


@given(st.integers(0, 10**7))
def test_a_fraction_of_a_nano_dollar_per_token_rounds_once_per_call_half_to_even(
    tokens: int,
) -> None:
    table = _HALF_NANO
    priced = price("half-nano", (tokens, 0, 0, 0, 0), table=table)
    assert priced is not None
    exact = Fraction(tokens, 2)
    assert abs(priced.cost_nanousd - exact) <= Fraction(1, 2)
    if exact.denominator == 2:  # a tie goes to the even neighbour
        assert priced.cost_nanousd % 2 == 0


def _half_nano_table() -> PriceTable:
    return PriceTable(
        overlay_from_object(
            {
                "models": {
                    "half-nano": {
                        "prices": [{"effective": "2000-01-01", "input": "0.0005", "output": 0}]
                    }
                }
            },
            "test",
        )
    )


_HALF_NANO = _half_nano_table()


calls = st.lists(
    st.tuples(
        st.sampled_from(["haiku", "claude-opus-4-5", "claude-haiku-4-5", "claude-3-5-sonnet"]),
        st.tuples(*(st.integers(min_value=0, max_value=10**9) for _ in range(5))),
    ),
    min_size=1,
    max_size=50,
)


@given(calls)
def test_sum_of_call_costs_equals_cost_of_summed_tokens(
    batch: list[tuple[str, Tokens]],
) -> None:
    for model in {model for model, _ in batch}:
        mine = [tokens for m, tokens in batch if m == model]
        per_call = sum(price(model, tokens).cost_nanousd for tokens in mine)  # type: ignore[union-attr]
        summed = tuple(sum(t[i] for t in mine) for i in range(5))
        together = price(model, summed)  # type: ignore[arg-type]
        assert together is not None and per_call == together.cost_nanousd


def test_usd_conversions_are_exact() -> None:
    assert usd_to_nanos("25.00") == 25_000_000_000
    assert usd_to_nanos(0.1) == 100_000_000
    assert nanos_to_usd(1) == Decimal("0.000000001")
    with pytest.raises(ValueError, match="9 decimal"):
        usd_to_nanos("0.0000000001")

"""Cost of pricing one model call: PriceTable.price_call vs genai-prices' own calc_price.

Run: .venv/bin/python bench/pricing_lookup.py [--calls 50000]

Side by side in the same run, each call timed on its own, in interleaved blocks:
  - price_call for a one-period model (claude-3-5-sonnet), a model with price history
    (claude-opus-4-6: a bisect over its periods) and a long-context one above its threshold
    (claude-sonnet-4-5), each resolved once before timing;
  - the baseline: genai_prices.calc_price for the same sonnet call (what pricing every call
    through the package directly would cost).
Also printed: the one-time cost of resolving a model id the first time.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from genai_prices import Usage, calc_price

from producers.pricing import PriceTable

BLOCK = 500
AT_MS = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)


def median(samples: list[int]) -> int:
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000, help="calls per variant")
    args = parser.parse_args()

    table = PriceTable()
    began = time.perf_counter_ns()
    table.tier_for("claude-3-5-sonnet-20241022")  # first resolution (imports the data)
    first_ns = time.perf_counter_ns() - began
    began = time.perf_counter_ns()
    table.tier_for("claude-opus-4-6")
    second_ns = time.perf_counter_ns() - began
    table.tier_for("claude-sonnet-4-5")

    price = table.price_call
    usage = Usage(input_tokens=2000, output_tokens=400, cache_read_tokens=800)
    when = datetime.fromtimestamp(AT_MS / 1000, UTC)
    variants: dict[str, tuple[Callable[[], object], list[int]]] = {
        "price_call": (
            lambda: price(
                "claude-3-5-sonnet-20241022",
                input_tokens=1200,
                output_tokens=400,
                cache_read_tokens=800,
                at_ms=AT_MS,
            ),
            [],
        ),
        "price_call_history": (
            lambda: price("claude-opus-4-6", input_tokens=1200, output_tokens=400, at_ms=AT_MS),
            [],
        ),
        "price_call_long_context": (
            lambda: price(
                "claude-sonnet-4-5", input_tokens=250_000, output_tokens=400, at_ms=AT_MS
            ),
            [],
        ),
        "genai_calc_price": (
            lambda: calc_price(usage, "claude-3-5-sonnet-20241022", genai_request_timestamp=when),
            [],
        ),
    }
    clock = time.perf_counter_ns
    for _ in range(max(1, args.calls // BLOCK)):
        for call, samples in variants.values():
            for _ in range(BLOCK):
                start = clock()
                call()
                samples.append(clock() - start)

    figures: dict[str, object] = {"bench": "pricing_lookup", "calls_per_variant": args.calls}
    for name, (_, samples) in variants.items():
        figures[f"{name}_median_ns"] = median(samples)
        print(f"{name:>24}: median {median(samples):>8,} ns")
    figures["first_resolution_ms"] = round(first_ns / 1e6, 1)
    figures["next_resolution_ms"] = round(second_ns / 1e6, 2)
    print(f"first model resolution {first_ns / 1e6:.1f} ms, next {second_ns / 1e6:.2f} ms")
    figures["ratio_calc_price_over_price_call_median"] = round(
        median(variants["genai_calc_price"][1]) / median(variants["price_call"][1]), 1
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""The overlay file: JSON and TOML read alike; every mistake is one clear PricingError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.price_overlay import load_overlay
from producers.pricing import PriceTable, PricingError

JSON_OVERLAY = {
    "version": "acme-7",
    "models": {
        "acme-large": {
            "tier": "opus",
            "prices": [
                {"effective": "2026-01-01", "input": 2.5, "output": "10"},
                {"effective": "2026-06-01T00:00:00+02:00", "input": 2, "output": 8},
            ],
        }
    },
}

TOML_OVERLAY = """
version = "acme-7"

[models.acme-large]
tier = "opus"

[[models.acme-large.prices]]
effective = "2026-01-01"
input = 2.5
output = "10"

[[models.acme-large.prices]]
effective = "2026-06-01T00:00:00+02:00"
input = 2
output = 8
"""

JUNE_1_UTC_MS = 1_780_264_800_000  # 2026-05-31T22:00:00Z, i.e. 2026-06-01 00:00 at +02:00


def test_json_and_toml_overlays_price_alike(tmp_path: Path) -> None:
    as_json = tmp_path / "prices.json"
    as_json.write_text(json.dumps(JSON_OVERLAY))
    as_toml = tmp_path / "prices.toml"
    as_toml.write_text(TOML_OVERLAY)
    results = []
    for file in (as_json, as_toml):
        table = PriceTable.load(file)
        results.append(
            [
                table.price_call(
                    "acme-large", input_tokens=1_000_000, output_tokens=1_000_000, at_ms=at
                )
                for at in (JUNE_1_UTC_MS - 1, JUNE_1_UTC_MS)
            ]
        )
    assert results[0] == results[1]
    before, after = results[0]
    assert before is not None and after is not None
    assert before.cost_nanousd == 12_500_000_000 and after.cost_nanousd == 10_000_000_000
    assert after.price_version == "acme-7@2026-05-31T22:00:00Z"
    assert after.tier == "opus"


def test_an_overlay_without_a_version_is_named_by_its_content(tmp_path: Path) -> None:
    file = tmp_path / "prices.json"
    file.write_text(json.dumps({"models": JSON_OVERLAY["models"]}))
    version = load_overlay(file).version
    assert version.startswith("sha256:") and len(version) == len("sha256:") + 12
    file.write_text(json.dumps({"models": JSON_OVERLAY["models"]}, indent=1))
    assert load_overlay(file).version != version


def _entry(**fields: object) -> dict[str, object]:
    return {
        "models": {
            "m": {"prices": [{"effective": "2026-01-01", "input": 1, "output": 2, **fields}]}
        }
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"modles": {}}), "modles: Extra inputs are not permitted"),
        (json.dumps(_entry(input=-1)), r"models.m.prices.0.input: Input should be greater"),
        (json.dumps(_entry(input="abc")), "models.m.prices.0.input"),
        (json.dumps(_entry(input="NaN")), "models.m.prices.0.input"),
        (json.dumps(_entry(effective="yesterday")), "models.m.prices.0.effective"),
        (json.dumps(_entry(cache_writes=1)), "cache_writes: Extra inputs"),
        (json.dumps({"models": {"m": {"prices": []}}}), "models.m.prices: List should have"),
        (
            json.dumps(
                {
                    "models": {
                        "m": {
                            "prices": [
                                {"effective": "2026-01-01", "input": 1, "output": 2},
                                {"effective": "2026-01-01T00:00:00Z", "input": 3, "output": 4},
                            ]
                        }
                    }
                }
            ),
            "two prices effective 2026-01-01",
        ),
        (
            json.dumps({"models": {"M": _entry()["models"]["m"], "m": _entry()["models"]["m"]}}),  # type: ignore[index]
            "model 'm' appears twice",
        ),
        (json.dumps(_entry(input="0." + "1" * 250)), "too many digits"),
    ],
)
def test_overlay_mistakes_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "prices.json"
    file.write_text(content)
    with pytest.raises(PricingError, match=message) as caught:
        PriceTable.load(file)
    assert str(file) in str(caught.value)


def test_a_missing_overlay_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match="cannot read it"):
        PriceTable.load(tmp_path / "nowhere.json")


def test_bad_toml_says_toml(tmp_path: Path) -> None:
    file = tmp_path / "prices.toml"
    file.write_text("version = ")
    with pytest.raises(PricingError, match="not valid TOML"):
        PriceTable.load(file)


def test_an_effective_time_is_exact_to_the_millisecond(tmp_path: Path) -> None:
    # 05:31:15.350 is one of the instants whose float seconds * 1000 truncates to .349
    file = tmp_path / "prices.json"
    prices = [
        {"effective": "2000-01-01", "input": 1, "output": 1},
        {"effective": "2004-09-16T05:31:15.350Z", "input": 2, "output": 2},
    ]
    file.write_text(json.dumps({"version": "v", "models": {"m": {"prices": prices}}}))
    table = PriceTable.load(file)
    costs = [
        table.price_call("m", input_tokens=1_000_000, output_tokens=0, at_ms=at)
        for at in (1_095_312_675_349, 1_095_312_675_350)
    ]
    assert [c.cost_nanousd for c in costs if c is not None] == [10**9, 2 * 10**9]

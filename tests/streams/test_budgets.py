"""Budget thresholds and alert rules as pure functions."""

from __future__ import annotations

import pytest

from streams import sketches
from streams.budgets import Budget, alert_record, crossed, parse_budget, state, state_record
from streams.rules import Rule, conditions, parse_rule

USD = 1_000_000_000


def test_thresholds_cross_exactly_at_their_fraction() -> None:
    budget = parse_budget({"scope": "global", "daily_budget_usd": "10"})
    assert budget.budget_nanousd == 10 * USD
    assert crossed(budget, 5 * USD - 1) == []
    assert crossed(budget, 5 * USD) == [0.5]
    assert state(budget, 9 * USD) == "critical"
    assert state(budget, 10 * USD) == "stopped"
    record = state_record(budget, "2026-11-26", 8_500_000_000, 1)
    assert record["state"] == "alert" and record["remaining_usd"] == "1.5"
    alert = alert_record(budget, "2026-11-26", 0.8, 8_500_000_000, 1)
    assert alert["id"] == "budget:global:2026-11-26:0.8" and alert["severity"] == "alert"


def test_other_threshold_counts_name_the_last_one_stop() -> None:
    budget = Budget("user:a", USD, (0.5, 1.0))
    assert state(budget, USD) == "stopped"
    assert alert_record(budget, "d", 0.5, USD // 2, 0)["severity"] == "warning"


@pytest.mark.parametrize(
    "record",
    [{"scope": "g"}, {"scope": "g", "daily_budget_usd": "-1"},
     {"scope": "g", "daily_budget_usd": "1", "thresholds": [0.9, 0.5]}],
)  # fmt: skip
def test_bad_budgets_are_refused(record: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_budget(record)


def test_latency_and_error_rules_need_min_count() -> None:
    rule = parse_rule({"id": "ttfb", "type": "latency_slo", "threshold": 500, "min_count": 3})
    sk = sketches.empty()
    for v in (900.0, 950.0):
        sketches.add(sk, v)
    minutes = {
        "60000": {
            "started": 2,
            "failed": 1,
            "sketch": {"time_to_first_byte_ms": sketches.to_wire(sk)},
        }
    }
    assert conditions(rule, minutes, {}, 60000) == {}
    sketches.add(sk, 990.0)
    minutes["60000"]["sketch"]["time_to_first_byte_ms"] = sketches.to_wire(sk)
    assert conditions(rule, minutes, {}, 60000)["global"] > 500
    errors = Rule(id="e", type="error_rate", threshold=0.4)
    assert conditions(errors, minutes, {}, 60000) == {"global": 0.5}
    assert conditions(errors, minutes, {}, 60000 + 600_000) == {}  # outside the window

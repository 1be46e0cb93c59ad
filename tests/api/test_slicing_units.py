"""Filter parsing (api/slicing.py), grouped CSV columns and the Prometheus label bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.errors import ApiError
from api.export_format import grouped_rows, scalar_paths
from api.exposition import MAX_LABEL_VALUES, SnapshotCollector, bounded
from api.models import Summary
from api.slicing import Slice, slice_params, where_params
from streams.slicing import Where

NO_FILTER = {k: None for k in ("service", "environment", "model", "tier", "user", "tag")}


def parse(**params: str) -> Slice:
    group_by = params.pop("group_by", None)
    return slice_params(where_params(**{**NO_FILTER, **params}), group_by)


def test_filters_become_one_where() -> None:
    cut = parse(service="gen", environment="prod", tier="opus", tag="feature:uvp:v2")
    assert cut.where == Where(
        service="gen", environment="prod", tier="opus", tag=("feature", "uvp:v2")
    )
    assert cut.reader_kwargs() == {"where": cut.where}
    assert parse().reader_kwargs() == {} and parse().is_empty()
    assert parse(group_by="tag:team").reader_kwargs() == {"group_by": "tag:team"}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"tag": "feature"}, "key:value"),
        ({"tag": "Bad Key:x"}, "tag key"),
        ({"tag": "feature:"}, "value"),
        ({"service": ""}, "service"),
        ({"user": "u" * 129}, "user"),
        ({"model": "a\nb"}, "model"),
        ({"environment": "e" * 65}, "environment"),
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "tag"}, "tag:<key>"),
        ({"group_by": "service:x"}, "no ':'"),
        ({"group_by": "tag:Not Valid"}, "tag key"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(params: dict[str, str], says: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(**params)
    assert caught.value.status == 422 and caught.value.error == "invalid_filter"
    assert says in caught.value.message


@given(
    st.text(min_size=1, max_size=128).filter(str.isprintable),
    st.from_regex(r"[a-z0-9_.-]{1,40}", fullmatch=True),
    st.text(min_size=1, max_size=100).filter(str.isprintable),
)
def test_any_contract_value_is_accepted_as_given(name: str, key: str, value: str) -> None:
    cut = parse(service=name, user=name, tag=f"{key}:{value}", group_by=f"tag:{key}")
    assert cut.where.service == cut.where.user == name
    assert cut.where.tag == (key, value) and cut.group_by == f"tag:{key}"
    assert hash(cut) == hash(
        parse(service=name, user=name, tag=f"{key}:{value}", group_by=f"tag:{key}")
    )


def test_a_grouped_csv_has_one_row_per_group_and_other() -> None:
    paths = scalar_paths(Summary)
    assert paths[0] == "total_generations" and "start_ms" not in paths
    answer = {
        "group_by": "service",
        "groups": [{"value": "a", "total_generations": 3}, {"value": "none", "events": 1}],
        "other": {"total_generations": 2},
    }
    rows = list(grouped_rows((0, 60_000), answer, paths))
    assert [r[2] for r in rows] == ["a", "none", "other"]
    assert [r[3] for r in rows] == [3, None, 2]


@given(st.lists(st.integers(0, 10**6), max_size=200), st.booleans())
def test_bounded_keeps_the_top_and_folds_the_rest_exactly(values: list[int], other: bool) -> None:
    rows = [{"k": f"v{i}", "n": n} for i, n in enumerate(values)]
    if other:
        rows.append({"k": "other", "n": 7})
    kept = bounded(rows, "k", lambda r: r["n"], ["n"])
    assert len(kept) <= MAX_LABEL_VALUES
    assert len({r["k"] for r in kept}) == len(kept)
    assert sum(r["n"] for r in kept) == sum(r["n"] for r in rows)
    if len(rows) <= MAX_LABEL_VALUES:
        assert len(kept) == len(rows)


def test_prometheus_series_stay_bounded_however_many_values_the_data_has() -> None:
    many = 5_000

    def grouped(field: str) -> dict[str, object]:
        groups = [{"value": f"svc-{i}", field: i} for i in range(many)]
        return {"group_by": "service", "groups": groups, "other": {field: 1}}

    collector = SnapshotCollector(
        performance={},
        health={
            "errors_by_type": {f"err-{i}": i for i in range(many)},
            "circuit_breakers": [
                {"name": f"b{i}", "state": "open" if i % 2 else "closed"} for i in range(many)
            ],
        },
        quality={
            "upgrades_by_path": [
                {"from_tier": f"t{i}", "to_tier": "opus", "count": 1} for i in range(many)
            ]
        },
        costs={
            "by_model": [
                {"model": f"m{i}", "tier": None, "cost_usd": "0.5", "cost_nanousd": i, "calls": 1}
                for i in range(many)
            ],
            "by_user": [{"user_id": f"user-{i}", "cost_usd": "1"} for i in range(many)],
        },
        budgets=[],
        recent_by={
            "service": {**grouped("total_generations")},
            "environment": {**grouped("total_generations"), "group_by": "environment"},
        },
        today_by={"service": grouped("total_cost_nanousd")},
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert "user-" not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for family in families.values():
        assert len(family.samples) <= MAX_LABEL_VALUES * 4, family.name  # 4 token kinds
    errors = families["genpulse_errors_5m"].samples
    assert len(errors) == MAX_LABEL_VALUES
    assert sum(s.value for s in errors) == sum(range(many))
    assert {s.labels["type"] for s in errors} >= {"other", f"err-{many - 1}"}
    breakers = {
        s.labels["name"]: s.value for s in families["genpulse_circuit_breaker_open"].samples
    }
    assert sum(breakers.values()) == many // 2 and breakers["other"] == many // 2 - 19
    services = families["genpulse_service_generations_5m"].samples
    assert len(services) == MAX_LABEL_VALUES
    assert sum(s.value for s in services) == sum(range(many)) + 1  # the worker's other: 1
    cost = families["genpulse_service_cost_today_usd"].samples
    assert sum(s.value for s in cost) == pytest.approx((sum(range(many)) + 1) / 1e9)
    assert len(families["genpulse_model_calls_today"].samples) == MAX_LABEL_VALUES
    assert len(families["genpulse_model_upgrades_5m"].samples) == MAX_LABEL_VALUES

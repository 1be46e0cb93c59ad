"""The Grafana dashboard and Prometheus rules use only series the API really exposes, the
JSON is the generator's output, and the provisioning points at the same data source."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import redis.asyncio as aioredis
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from api.exposition import SnapshotCollector
from streams.reader import MetricsReader

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
NAME = re.compile(r"\b(genpulse_[a-z0-9_]+)")


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "genpulse.json").read_text())
    return loaded


def exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((GRAFANA / "alerts.yml").read_text())
    return [r["expr"] for group in rules["groups"] for r in group["rules"]]


async def exposed_names(redis: aioredis.Redis, prefix: str) -> set[str]:
    """Every family name GET /metrics serves (families are listed even without samples)."""
    reader = MetricsReader(redis, prefix)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        SnapshotCollector(
            performance=await reader.performance(0, 60_000),
            health=await reader.health(0, 60_000),
            quality=await reader.quality(0, 60_000),
            costs=await reader.costs(0, 60_000),
            budgets=await reader.budgets(),
        )
    )
    text = generate_latest(registry).decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))


def test_the_json_is_the_generators_output() -> None:
    assert (GRAFANA / "dashboards" / "genpulse.json").read_text() == generator().render()


def test_sections_match_the_built_in_page() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "Performance", "Costs", "Quality", "System health", "Alerts"]


def test_panels_fit_the_grid_without_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_every_query_uses_the_provisioned_data_source() -> None:
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = source["datasources"][0]["uid"]
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid


def test_every_query_is_valid_promql() -> None:
    for expr in [*exprs(), *rule_exprs()]:
        promql_parser.parse(expr)  # raises ValueError with the position of a syntax error


async def test_every_series_used_is_one_the_api_exposes(redis: aioredis.Redis, unique: str) -> None:
    exposed = await exposed_names(redis, unique)
    used = {name for expr in [*exprs(), *rule_exprs()] for name in NAME.findall(expr)}
    assert used, "the dashboard queries no genpulse series"
    assert used <= exposed, f"not served by GET /metrics: {sorted(used - exposed)}"

"""Writes deploy/grafana/dashboards/genpulse.json: the built-in page's sections over Prometheus.

Run: .venv/bin/python deploy/grafana/build_dashboard.py
The panels query the series the API exposes at GET /metrics (api/exposition.py); a test
(tests/sinks/test_grafana.py) checks that every name used here is one the API serves and
that the JSON file is this script's output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "genpulse.json"
DATASOURCE = {"type": "prometheus", "uid": "genpulse-prometheus"}
WIDTH = 24

Target = tuple[str, str]  # (PromQL, legend)


class Layout:
    """Places panels left to right, wrapping rows, and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": self.y},
                "id": len(self.panels) + 1,
                "panels": [],
            }
        )
        self.y += 1

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > WIDTH:
            self._newline()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["id"] = len(self.panels) + 1
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0


def targets(queries: list[Target], instant: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "datasource": DATASOURCE,
            "expr": expr,
            "legendFormat": legend,
            "refId": chr(ord("A") + i),
            **({"instant": True, "range": False, "format": "table"} if instant else {}),
        }
        for i, (expr, legend) in enumerate(queries)
    ]


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def stat(title: str, expr: str, unit: str, decimals: int | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "targets": targets([(expr, title)]),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        },
    }


def series(
    title: str, queries: list[Target], unit: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    extra = dict(extra or {})
    custom = {"lineWidth": 1, "fillOpacity": 10, **extra.pop("custom", {})}
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "targets": targets(queries),
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom, **extra}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        },
    }


def bars(
    title: str, expr: str, legend: str, unit: str, limits: dict[str, Any] | None = None
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if limits:
        defaults["thresholds"] = limits
        defaults["min"], defaults["max"] = 0, 1
    return {
        "type": "bargauge",
        "title": title,
        "datasource": DATASOURCE,
        "targets": targets([(expr, legend)]),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "orientation": "horizontal",
            "displayMode": "gradient",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def table(title: str, expr: str) -> dict[str, Any]:
    return {
        "type": "table",
        "title": title,
        "datasource": DATASOURCE,
        "targets": targets([(expr, "")], instant=True),
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
        "transformations": [
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}},
            }
        ],
    }


BUDGET_STEPS = thresholds(
    (None, "green"), (0.5, "yellow"), (0.8, "orange"), (0.9, "red"), (1.0, "purple")
)
MARKS = ("time_to_first_byte", "time_to_first_content", "time_to_interactive", "time_to_complete")


def dashboard() -> dict[str, Any]:
    g = Layout()

    g.row("Overview")
    g.add(stat("Generations / s", "genpulse_requests_per_second", "reqps", 2), 4, 4)
    g.add(
        stat("p95 generation time", 'genpulse_generation_duration_seconds{quantile="0.95"}', "s"),
        4,
        4,
    )
    g.add(stat("Error rate", "genpulse_error_ratio", "percentunit", 1), 4, 4)
    g.add(stat("Cache hit rate", "genpulse_cache_hit_ratio", "percentunit", 1), 4, 4)
    g.add(stat("Cost today", "genpulse_cost_today_usd", "currencyUSD", 2), 4, 4)
    g.add(stat("Average quality", "genpulse_quality_score_average", "none", 1), 4, 4)

    g.row("Performance")
    g.add(
        series(
            "Phase duration p95",
            [('genpulse_phase_duration_seconds{quantile="0.95"}', "{{phase}}")],
            "s",
        ),
        12,
        8,
    )
    g.add(
        series(
            "Generation duration",
            [("genpulse_generation_duration_seconds", "p{{quantile}}")],
            "s",
        ),
        12,
        8,
    )
    g.add(
        series(
            "Time to first byte / content / interactive / complete (p95)",
            [(f'genpulse_{m}_seconds{{quantile="0.95"}}', m.replace("_", " ")) for m in MARKS],
            "s",
        ),
        12,
        8,
    )
    g.add(
        series(
            "Within target",
            [("genpulse_within_target_ratio", "{{mark}}")],
            "percentunit",
            {"max": 1},
        ),
        6,
        8,
    )
    g.add(
        series(
            "Load",
            [
                ("genpulse_requests_per_second", "generations / s"),
                ("genpulse_concurrent_requests", "in flight"),
                ("genpulse_queue_depth", "queue depth"),
            ],
            "short",
        ),
        6,
        8,
    )

    g.row("Costs")
    g.add(
        series(
            "Cost today by model", [("genpulse_model_cost_today_usd", "{{model}}")], "currencyUSD"
        ),
        12,
        8,
    )
    g.add(bars("Calls today by model", "genpulse_model_calls_today", "{{model}}", "short"), 6, 8)
    g.add(
        bars(
            "Tokens today by kind",
            "sum by (kind) (genpulse_model_tokens_today)",
            "{{kind}}",
            "short",
        ),
        6,
        8,
    )
    g.add(stat("Cost per user today", "genpulse_cost_per_user_today_usd", "currencyUSD", 4), 6, 4)
    g.add(stat("Unpriced calls today", "genpulse_unpriced_calls_today", "short"), 6, 4)
    g.add(
        bars("Budget used", "genpulse_budget_used_ratio", "{{scope}}", "percentunit", BUDGET_STEPS),
        12,
        8,
    )

    g.row("Quality")
    g.add(
        series("Average quality score", [("genpulse_quality_score_average", "score")], "none"), 8, 8
    )
    g.add(
        series(
            "User actions (per completed generation)",
            [
                (f"genpulse_{name}_ratio", name)
                for name in ("acceptance", "edit", "regeneration", "abandonment", "upgrade")
            ],
            "percentunit",
        ),
        8,
        8,
    )
    g.add(stat("Satisfaction (1-5)", "genpulse_satisfaction_average", "none", 2), 4, 4)
    g.add(stat("NPS", "genpulse_nps", "none", 0), 4, 4)
    g.add(bars("Edits by kind, last 5 minutes", "genpulse_edits_5m", "{{kind}}", "short"), 8, 8)
    g.add(
        bars(
            "Generation outcomes, last 5 minutes",
            "genpulse_generation_outcomes_5m",
            "{{outcome}}",
            "short",
        ),
        8,
        8,
    )
    g.add(bars("Calls today by tier", "genpulse_tier_calls_today", "{{tier}}", "short"), 8, 8)

    g.row("System health")
    g.add(
        series(
            "Generations, last 5 minutes",
            [
                ("genpulse_generations_started_5m", "started"),
                ("genpulse_generations_failed_5m", "failed"),
            ],
            "short",
        ),
        8,
        8,
    )
    g.add(
        series("Errors by type, last 5 minutes", [("genpulse_errors_5m", "{{type}}")], "short"),
        8,
        8,
    )
    g.add(
        series(
            "Retries and fallbacks, last 5 minutes",
            [("genpulse_retries_5m", "retry {{outcome}}"), ("genpulse_fallbacks_5m", "fallbacks")],
            "short",
        ),
        8,
        8,
    )
    g.add(
        bars("Circuit breakers (1 = open)", "genpulse_circuit_breaker_open", "{{name}}", "short"),
        12,
        6,
    )
    g.add(
        series(
            "Dead letters, last 5 minutes", [("genpulse_dead_letters_5m", "{{reason}}")], "short"
        ),
        12,
        6,
    )

    # The sinks process (`genpulse sinks`): its counters reset when it restarts; rate() copes.
    g.add(
        series(
            "Sinks: delivered / s",
            [('sum by (sink) (rate(genpulse_sink_items_total{outcome="sent"}[5m]))', "{{sink}}")],
            "short",
        ),
        8,
        8,
    )
    g.add(
        series(
            "Sinks: dropped and failed / s",
            [
                (
                    "sum by (sink, outcome) "
                    '(rate(genpulse_sink_items_total{outcome=~"dropped|failed"}[5m]))',
                    "{{sink}} {{outcome}}",
                )
            ],
            "short",
        ),
        8,
        8,
    )
    g.add(
        series(
            "Sinks: queued, and stale (1 = health entry older than 3 intervals)",
            [
                ("genpulse_sink_queued", "{{sink}} queued"),
                ("genpulse_sink_stale", "{{sink}} stale"),
            ],
            "short",
        ),
        8,
        8,
    )

    g.row("Alerts")
    g.add(
        table(
            "Firing alerts (Prometheus rules, deploy/grafana/alerts.yml)",
            'ALERTS{alertstate="firing"}',
        ),
        12,
        8,
    )
    g.add(
        series(
            "Budget used against thresholds",
            [("genpulse_budget_used_ratio", "{{scope}}")],
            "percentunit",
            {"thresholds": BUDGET_STEPS, "custom": {"thresholdsStyle": {"mode": "line"}}},
        ),
        12,
        8,
    )

    return {
        "uid": "genpulse",
        "title": "genpulse",
        "description": "The built-in page's sections over the API's /metrics.",
        "tags": ["genpulse"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": g.panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")

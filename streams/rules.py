"""Alert rules from the control topic (pure): latency SLO, error rate, circuit breaker.

A rule is evaluated on the controller's global per-minute state (all partitions merged) over
its window ending at the newest minute seen (event time). A condition that becomes true
starts an episode (one "fired" record); when it clears, one "resolved" record with the same
id ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams import sketches
from streams.keys import MINUTE_MS

RULE_TYPES = ("latency_slo", "error_rate", "circuit_breaker")


@dataclass(frozen=True)
class Rule:
    id: str
    type: str
    severity: str = "warning"
    threshold: float = 0.0
    window_s: int = 300
    min_count: int = 1
    metric: str = "time_to_first_byte_ms"
    quantile: float = 0.95
    enabled: bool = True


def parse_rule(obj: dict[str, Any]) -> Rule:
    rule_id, kind = obj.get("id"), obj.get("type")
    if not isinstance(rule_id, str) or not rule_id:
        raise ValueError("alert rule without an id")
    if kind not in RULE_TYPES:
        raise ValueError(f"rule {rule_id}: type must be one of {RULE_TYPES}")
    quantile = float(obj.get("quantile", 0.95))
    if not 0 < quantile < 1:
        raise ValueError(f"rule {rule_id}: quantile must be in (0, 1)")
    return Rule(
        id=rule_id,
        type=kind,
        severity=str(obj.get("severity", "warning")),
        threshold=float(obj.get("threshold", 0)),
        window_s=max(60, min(int(obj.get("window_s", 300)), 7200)),
        min_count=int(obj.get("min_count", 1)),
        metric=str(obj.get("metric", "time_to_first_byte_ms")),
        quantile=quantile,
        enabled=bool(obj.get("enabled", True)),
    )


def conditions(
    rule: Rule,
    minutes: dict[str, dict[str, Any]],
    breakers: dict[str, dict[str, Any]],
    newest_minute: int,
) -> dict[str, float]:
    """scope -> observed value, for every scope where the rule's condition holds now."""
    if not rule.enabled:
        return {}
    if rule.type == "circuit_breaker":
        return {f"breaker:{n}": 1.0 for n, b in breakers.items() if b["state"] == "open"}
    first = newest_minute - rule.window_s * 1000 + MINUTE_MS
    window = [m for k, m in minutes.items() if first <= int(k) <= newest_minute]
    if rule.type == "error_rate":
        started = sum(m["started"] for m in window)
        failed = sum(m["failed"] for m in window)
        if started >= max(rule.min_count, 1) and failed / started > rule.threshold:
            return {"global": failed / started}
        return {}
    merged = sketches.empty()
    for m in window:
        wire = m["sketch"].get(rule.metric)
        if wire:
            sketches.merge_into(merged, sketches.from_wire(wire))
    if merged["count"] < max(rule.min_count, 1):
        return {}
    value = sketches.quantile(merged, rule.quantile)
    if value is not None and value > rule.threshold:
        return {"global": value}
    return {}


def alert_record(
    rule: Rule, scope: str, episode_ms: int, status: str, value: float, now_ms: int
) -> dict[str, Any]:
    window = "now" if rule.type == "circuit_breaker" else f"{rule.window_s}s"
    what = {
        "latency_slo": f"p{rule.quantile * 100:g} {rule.metric} {value:.1f} > {rule.threshold:g}",
        "error_rate": f"error rate {value:.3f} > {rule.threshold:g}",
        "circuit_breaker": f"circuit breaker {scope.removeprefix('breaker:')} open",
    }[rule.type]
    return {
        "v": 1,
        "id": f"rule:{rule.id}:{scope}:{episode_ms}",
        "rule": rule.id,
        "type": rule.type,
        "status": status,
        "severity": rule.severity,
        "scope": scope,
        "value": value,
        "threshold": rule.threshold,
        "window": window,
        "time_ms": now_ms,
        "message": what if status == "fired" else f"resolved: {what}",
    }

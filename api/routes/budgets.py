"""Budgets and alert rules: admins write them to `<prefix>.control`; readers see the state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.auth import Role, require
from api.control import (
    SCOPE_PATTERN,
    AlertRule,
    AlertRuleSet,
    BudgetConfig,
    BudgetUpdate,
    budget_record,
    budget_tombstone,
    rule_records,
)
from api.errors import AUTHED, KAFKA_DOWN, REDIS_DOWN, ApiError
from api.kafka_writer import KafkaUnavailable, OutRecord
from api.models import Alert, BudgetStatus
from api.settings import ApiSettings

router = APIRouter(tags=["budgets and alerts"])
Reader = Depends(require(Role.READ))
Admin = Depends(require(Role.ADMIN))

ScopePath = Annotated[
    str,
    Path(
        pattern=SCOPE_PATTERN,
        description="`global`, `user:<id>`, `service:<name>`, `tier:<tier>`, "
        "`model:<id or tier>`, `tag:<key>=<value>` or `environment:<name>`.",
        examples=["global"],
    ),
]


def _kafka_down(exc: KafkaUnavailable) -> ApiError:
    return ApiError(
        503,
        "kafka_unavailable",
        f"Kafka is unreachable ({exc}); nothing was changed, try again",
        headers={"Retry-After": "5"},
    )


async def _write(request: Request, records: list[OutRecord]) -> None:
    try:
        await request.app.state.writer.write(records)
    except KafkaUnavailable as exc:
        raise _kafka_down(exc) from None


@router.get(
    "/v1/budgets",
    response_model=list[BudgetStatus],
    dependencies=[Reader],
    summary="Budget status per scope: the period's spend, thresholds and forecast",
    responses={**AUTHED, **REDIS_DOWN},
)
async def list_budgets(request: Request) -> list[BudgetStatus]:
    return [BudgetStatus.model_validate(b) for b in await request.app.state.reader.budgets()]


@router.put(
    "/v1/budgets/{scope}",
    response_model=BudgetConfig,
    dependencies=[Admin],
    summary="Set the budget (amount per period, time zone, thresholds) of a scope",
    description="Written to the compacted control topic; the worker applies it within seconds.",
    responses={**AUTHED, **KAFKA_DOWN},
)
async def put_budget(request: Request, scope: ScopePath, update: BudgetUpdate) -> BudgetConfig:
    settings: ApiSettings = request.app.state.settings
    config, record = budget_record(settings.topic("control"), scope, update)
    await _write(request, [record])
    return config


@router.delete(
    "/v1/budgets/{scope}",
    status_code=204,
    dependencies=[Admin],
    summary="Remove the budget of a scope",
    responses={**AUTHED, **KAFKA_DOWN},
)
async def delete_budget(request: Request, scope: ScopePath) -> Response:
    settings: ApiSettings = request.app.state.settings
    await _write(request, [budget_tombstone(settings.topic("control"), scope)])
    return Response(status_code=204)


@router.get(
    "/v1/alert-rules",
    response_model=AlertRuleSet,
    dependencies=[Admin],
    summary="The alert rules in force (read back from the control topic)",
    responses={**AUTHED, **KAFKA_DOWN},
)
async def get_alert_rules(request: Request) -> AlertRuleSet:
    view = request.app.state.control_view
    try:
        await view.sync()
    except KafkaUnavailable as exc:
        raise _kafka_down(exc) from None
    rules = []
    for raw in view.rules():
        fields = {k: v for k, v in raw.items() if k in AlertRule.model_fields}
        try:
            rules.append(AlertRule.model_validate(fields))
        except ValueError:
            continue  # a record this API version cannot represent; the worker decides on it
    return AlertRuleSet(rules=rules)


@router.put(
    "/v1/alert-rules",
    response_model=AlertRuleSet,
    dependencies=[Admin],
    summary="Replace the whole set of alert rules",
    description="Rules missing from the body are removed; all changes commit together.",
    responses={**AUTHED, **KAFKA_DOWN},
)
async def put_alert_rules(request: Request, body: AlertRuleSet) -> AlertRuleSet:
    settings: ApiSettings = request.app.state.settings
    view = request.app.state.control_view
    try:
        await view.sync()
    except KafkaUnavailable as exc:
        raise _kafka_down(exc) from None
    await _write(request, rule_records(settings.topic("control"), body.rules, view.rule_ids()))
    return body


@router.get(
    "/v1/alerts",
    response_model=list[Alert],
    dependencies=[Reader],
    summary="Recent alerts, newest first",
    responses={**AUTHED, **REDIS_DOWN},
)
async def list_alerts(
    request: Request,
    since_ms: Annotated[
        int | None, Query(ge=0, description="Only alerts at or after this.")
    ] = None,
    severity: Annotated[str | None, Query(max_length=32, examples=["critical"])] = None,
    scope: Annotated[str | None, Query(max_length=160, examples=["global"])] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Alert]:
    found = await request.app.state.reader.alerts(
        since_ms=since_ms, severity=severity, scope=scope, limit=limit
    )
    return [Alert.model_validate(a) for a in found]

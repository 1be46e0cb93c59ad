"""MetricsClient: the fleet's figures for Python scripts, typed with the API's own models.

    from api.client import MetricsClient
    with MetricsClient("http://127.0.0.1:8000", token="…") as metrics:
        perf = metrics.performance(window="1h")      # api.models.PerformanceMetrics
        print(perf.p95_duration_ms, metrics.quality().acceptance_rate)

The SDK's get_* methods answer for one process; this answers for every service, as the
worker aggregated it (docs/api.md). It lives in api/, not producers/, because it parses
responses with api.models and producers must not import the API (producers <- streams <-
api). httpx does the HTTP: timeouts, connection reuse, one client per MetricsClient.
A non-2xx answer raises MetricsApiError with the API's error code and message.
"""

from __future__ import annotations

from datetime import date
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from api.models import (
    Alert,
    BudgetStatus,
    CostMetrics,
    DailyCostSummary,
    GroupedCostMetrics,
    GroupedHealthMetrics,
    GroupedPerformanceMetrics,
    GroupedQualityMetrics,
    GroupedSummary,
    HealthMetrics,
    PerformanceMetrics,
    QualityMetrics,
    RecentError,
    Summary,
    TimeseriesPoint,
    TopUsers,
)

M = TypeVar("M", bound=BaseModel)
GROUPED: dict[str, type[BaseModel]] = {
    "performance": GroupedPerformanceMetrics,
    "costs": GroupedCostMetrics,
    "quality": GroupedQualityMetrics,
    "health": GroupedHealthMetrics,
    "summary": GroupedSummary,
}
Moment = int | str | None
"""A range bound as the API takes it: epoch seconds or milliseconds, or ISO 8601 text."""


class MetricsApiError(RuntimeError):
    """The API answered with an error (`status`, its stable `code` and what to do)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class MetricsClient:
    """Read-only client of the metrics API (a `read` token)."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )

    def performance(
        self, window: str | None = None, *, from_: Moment = None, to: Moment = None
    ) -> PerformanceMetrics:
        """The specification's PerformanceMetrics over `window` (e.g. "1h") or from_/to."""
        return self._model(PerformanceMetrics, "/v1/metrics/performance", window, from_, to)

    def costs(
        self, window: str | None = None, *, from_: Moment = None, to: Moment = None
    ) -> CostMetrics:
        return self._model(CostMetrics, "/v1/metrics/costs", window, from_, to)

    def quality(
        self, window: str | None = None, *, from_: Moment = None, to: Moment = None
    ) -> QualityMetrics:
        return self._model(QualityMetrics, "/v1/metrics/quality", window, from_, to)

    def health(
        self, window: str | None = None, *, from_: Moment = None, to: Moment = None
    ) -> HealthMetrics:
        return self._model(HealthMetrics, "/v1/metrics/health", window, from_, to)

    def summary(
        self, window: str | None = None, *, from_: Moment = None, to: Moment = None
    ) -> Summary:
        return self._model(Summary, "/v1/metrics/summary", window, from_, to)

    def timeseries(
        self,
        metric: str,
        window: str | None = None,
        step: str = "1m",
        *,
        from_: Moment = None,
        to: Moment = None,
    ) -> list[TimeseriesPoint]:
        params = {**_range(window, from_, to), "metric": metric, "step": step}
        return self._list(TimeseriesPoint, "/v1/metrics/timeseries", params)

    def grouped(
        self,
        group: str,
        group_by: str,
        window: str | None = None,
        *,
        from_: Moment = None,
        to: Moment = None,
        **filters: str,
    ) -> Any:
        """`group` ("summary", "costs", …) per value of `group_by` ("service", "tag:feature"),
        with filters as the API names them (service=, environment=, model=, tier=, user=,
        tag="key:value"): the Grouped<View> model of api.models."""
        model = GROUPED[group]
        params = {**_range(window, from_, to), **filters, "group_by": group_by}
        return model.model_validate(self._get(f"/v1/metrics/{group}", params))

    def top_users(
        self,
        by: str = "cost",
        limit: int = 20,
        window: str | None = None,
        *,
        from_: Moment = None,
        to: Moment = None,
        user: str | None = None,
    ) -> TopUsers:
        """The users with the most cost, tokens or generations in the range."""
        params = {**_range(window, from_, to), "by": by, "limit": limit}
        if user is not None:
            params["user"] = user
        return TopUsers.model_validate(self._get("/v1/top/users", params))

    def daily_costs(
        self, first: date | None = None, last: date | None = None
    ) -> list[DailyCostSummary]:
        """The specification's DailyCostSummary per day (default: the last 7 days)."""
        params = {k: v.isoformat() for k, v in (("from", first), ("to", last)) if v is not None}
        return self._list(DailyCostSummary, "/v1/costs/daily", params)

    def budgets(self) -> list[BudgetStatus]:
        """The specification's BudgetStatus of every scope with a budget."""
        return self._list(BudgetStatus, "/v1/budgets", {})

    def alerts(self, limit: int = 100) -> list[Alert]:
        return self._list(Alert, "/v1/alerts", {"limit": limit})

    def recent_errors(self, limit: int = 100) -> list[RecentError]:
        return self._list(RecentError, "/v1/errors/recent", {"limit": limit})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MetricsClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _model(self, model: type[M], path: str, window: str | None, from_: Moment, to: Moment) -> M:
        return model.model_validate(self._get(path, _range(window, from_, to)))

    def _list(self, model: type[M], path: str, params: dict[str, Any]) -> list[M]:
        return TypeAdapter(list[model]).validate_python(self._get(path, params))  # type: ignore[valid-type]

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        response = self._http.get(path, params=params)
        if response.is_success:
            return response.json()
        try:
            body = response.json()
            code, message = str(body["error"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", response.text[:200]
        raise MetricsApiError(response.status_code, code, message)


def _range(window: str | None, from_: Moment, to: Moment) -> dict[str, Any]:
    """A window ending now ("1h"), or from/to (ISO 8601, epoch s or ms); the API checks them."""
    given = (("window", window), ("from", from_), ("to", to))
    return {name: value for name, value in given if value is not None}

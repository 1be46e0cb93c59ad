"""Who may call what: the token book, and every route against every kind of caller."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from api.auth import Role, TokenBook
from api.settings import ApiSettings
from tests.api.conftest import IDENTITIES, INGEST_KEY
from tests.api.server import running_api
from tests.api.test_collect import event

PUBLIC = {"/healthz", "/readyz", "/v1/collector.js", "/openapi.json", "/docs", "/redoc"}

# route -> (role it needs, a valid request: method, url, json body)
RULE = {"id": "err", "type": "error_rate", "threshold": 0.2}
ROUTES: dict[tuple[str, str], tuple[str, str, object]] = {
    ("GET", "/v1/metrics/performance"): ("read", "/v1/metrics/performance?window=24h", None),
    ("GET", "/v1/metrics/costs"): ("read", "/v1/metrics/costs", None),
    ("GET", "/v1/metrics/quality"): ("read", "/v1/metrics/quality", None),
    ("GET", "/v1/metrics/health"): ("read", "/v1/metrics/health", None),
    ("GET", "/v1/metrics/summary"): ("read", "/v1/metrics/summary", None),
    ("GET", "/v1/metrics/timeseries"): (
        "read",
        "/v1/metrics/timeseries?metric=generations&window=5m",
        None,
    ),
    ("GET", "/v1/costs/daily"): ("read", "/v1/costs/daily", None),
    ("GET", "/v1/top/users"): ("read", "/v1/top/users?by=tokens", None),
    ("GET", "/v1/errors/recent"): ("read", "/v1/errors/recent", None),
    ("GET", "/v1/budgets"): ("read", "/v1/budgets", None),
    ("GET", "/v1/alerts"): ("read", "/v1/alerts", None),
    ("GET", "/v1/export/{name}.csv"): ("read", "/v1/export/costs.csv", None),
    ("GET", "/v1/export/{name}.json"): ("read", "/v1/export/alerts.json", None),
    ("GET", "/v1/stream"): ("read", "/v1/stream", None),
    ("GET", "/metrics"): ("read", "/metrics", None),
    ("GET", "/v1/health/sinks"): ("read", "/v1/health/sinks", None),
    ("PUT", "/v1/budgets/{scope}"): ("admin", "/v1/budgets/global", {"daily_budget_usd": "9"}),
    ("DELETE", "/v1/budgets/{scope}"): ("admin", "/v1/budgets/user:nobody", None),
    ("GET", "/v1/alert-rules"): ("admin", "/v1/alert-rules", None),
    ("PUT", "/v1/alert-rules"): ("admin", "/v1/alert-rules", {"rules": [RULE]}),
    ("POST", "/v1/collect"): ("ingest", "/v1/collect", [event()]),
    ("POST", "/v1/otlp/v1/traces"): ("ingest", "/v1/otlp/v1/traces", {"resourceSpans": []}),
    ("POST", "/v1/otlp/v1/metrics"): ("ingest", "/v1/otlp/v1/metrics", {"resourceMetrics": []}),
}

ALLOWED = {"read": {"read", "admin"}, "admin": {"admin"}, "ingest": {"ingest"}}


def test_token_book_grants_roles_and_admin_includes_read() -> None:
    book = TokenBook(
        {Role.READ: [SecretStr("r" * 20)], Role.ADMIN: [SecretStr("a" * 20)], Role.INGEST: []}
    )
    assert book.roles_of("r" * 20) == {Role.READ}
    assert book.roles_of("a" * 20) == {Role.ADMIN, Role.READ}
    assert book.roles_of("a" * 19) == frozenset()
    assert book.roles_of("") == frozenset()


def test_short_tokens_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError) as caught:
        ApiSettings(api_read_tokens="tiny-secret")
    assert "tiny-secret" not in str(caught.value)


def test_comma_separated_tokens_and_origins_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENPULSE_API_ADMIN_TOKENS", "a" * 16 + ", " + "b" * 16)
    monkeypatch.setenv("GENPULSE_API_CORS_ORIGINS", "https://a.example,https://b.example")
    settings = ApiSettings()
    assert [t.get_secret_value() for t in settings.api_admin_tokens] == ["a" * 16, "b" * 16]
    assert settings.api_cors_origins == ("https://a.example", "https://b.example")


def test_the_matrix_names_every_route(api_settings: ApiSettings) -> None:
    app = create_app(api_settings)
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path not in PUBLIC
        for method in operations
    }
    assert routes == set(ROUTES), "add new routes to ROUTES with the role they need"


def _status(
    client: httpx.Client, method: str, url: str, body: object, headers: dict[str, str]
) -> int:
    with client.stream(method, url, json=body, headers=headers) as response:
        return response.status_code


@pytest.mark.parametrize("identity", list(IDENTITIES))
def test_every_route_answers_each_caller_as_documented(
    identity: str, api_settings: ApiSettings
) -> None:
    wrong: list[str] = []
    with running_api(api_settings) as base, httpx.Client(base_url=base, timeout=30) as client:
        for (method, template), (role, url, body) in ROUTES.items():
            status = _status(client, method, url, body, IDENTITIES[identity])
            if identity in ("none", "wrong"):
                expected = "401"
                ok = status == 401
            elif identity in ALLOWED[role]:
                expected = "2xx"
                ok = 200 <= status < 300
            else:
                expected = "403"
                ok = status == 403
            if not ok:
                wrong.append(f"{method} {template} as {identity}: {status}, expected {expected}")
        for path in ("/healthz", "/readyz", "/v1/collector.js"):
            status = _status(client, "GET", path, None, IDENTITIES[identity])
            if status in (401, 403):
                wrong.append(f"GET {path} as {identity}: {status}, expected no auth")
    assert not wrong, "\n".join(wrong)


def test_ingest_key_in_query_is_not_logged(
    api_settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    with running_api(api_settings) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.post(f"/v1/collect?key={INGEST_KEY}", json=[event()]).status_code == 202
        bad = client.get("/v1/metrics/summary", headers={"Authorization": f"Bearer {INGEST_KEY}"})
        assert bad.status_code == 403 and INGEST_KEY not in bad.text
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any("/v1/collect" in r.getMessage() for r in server_side)
    assert all(INGEST_KEY not in r.getMessage() for r in server_side)

"""schemathesis against the app's own OpenAPI: no 5xx and no response outside its schema.

Each operation gets a bounded number of generated requests (schemathesis mixes valid and
invalid ones) with a token that may call it, against the real app, Redis and Kafka. Every
default check runs except "schema-valid request accepted": rules across parameters (`to`
needs `from`, ascending thresholds, a latency rule needs a metric) are not expressible in
OpenAPI, and those requests rightly get 422.
/v1/stream is left out: it is an endless event stream (tests/api/test_stream.py covers it).
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.settings import ApiSettings
from tests.api.conftest import auth
from tests.api.server import running_api

pytestmark = pytest.mark.integration
# schemathesis imports many of its modules lazily, and pytest compiles them then (schemathesis
# is a pytest plugin, so its modules are assertion-rewritten). With the API's server thread
# running, CPython 3.11.7 can fail that compile with "AST constructor recursion depth
# mismatch" (its issue 106905; the AST state is shared by threads). It did twice in CI, from
# two different lazy imports, so every schemathesis module is imported here, at collection,
# before any thread starts.


def _import_every_schemathesis_module() -> None:
    for module in pkgutil.walk_packages(schemathesis.__path__, "schemathesis."):
        with contextlib.suppress(ImportError):  # an optional extra not installed (allure)
            importlib.import_module(module.name)


_import_every_schemathesis_module()

EXAMPLES_PER_OPERATION = 50


def fuzz(operation: schemathesis.APIOperation) -> None:
    who = "ingest" if operation.path.startswith(("/v1/collect", "/v1/otlp/")) else "admin"

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers=auth(who), timeout=30, excluded_checks=[positive_data_acceptance]
        )

    check()


def test_no_server_errors_and_responses_match_the_schema(api_settings: ApiSettings) -> None:
    with running_api(api_settings) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json").exclude(path="/v1/stream")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 18
        for operation in operations:
            fuzz(operation)

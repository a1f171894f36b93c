"""schemathesis over the whole live OpenAPI document: no 5xx, every answer matches it.

The test reads ``/openapi.json`` from the running server, so every route anyone adds is
covered without touching this file. Each operation gets a small budget of generated
requests (its documented examples first), sent with a credential that may call it: the
org admin for ``/v1/…`` and ``alias_admin`` for staff routes, whose ``{org_id}`` is the
test org so that the views are reached, not only their 404.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from query_api.settings import ApiSettings
from storage.database import Database
from tests.api.conftest import RunningApi, start_api

# A value the schema allows may still be refused for a reason no schema states (a cursor
# this deployment never signed, an end before the start): with a documented 4xx problem,
# which the other checks verify. Every other default check runs.
NOT_CHECKED = [schemathesis.checks.positive_data_acceptance]
EXAMPLES = int(os.environ.get("AEOS_TEST_SCHEMATHESIS_EXAMPLES", "8"))


@pytest.fixture
def api_unlimited(database: Database) -> Iterator[RunningApi]:
    """The API without a rate limit (schemathesis sends requests as fast as it can)."""
    running = start_api(database, ApiSettings(rate_per_minute=0))
    try:
        yield running
    finally:
        running.stop()


def _check_operation(api: RunningApi, operation: Any, headers: dict[str, str], org: str) -> None:
    path_parameters = {"org_id": org} if "{org_id}" in operation.path else None
    strategy: st.SearchStrategy[Any] = operation.as_strategy(path_parameters=path_parameters)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=api.base_url, headers=headers, timeout=30)
        case.validate_response(response, headers=headers, excluded_checks=NOT_CHECKED)

    check()


def test_every_operation_conforms(api_unlimited: RunningApi) -> None:
    api = api_unlimited
    org = api.make_org()
    document = api.client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # a malformed operation fails the test
        operations.append(result.ok())
    assert len(operations) >= 4  # health, readiness, /v1/me, the keys routes
    staff = api.headers(api.staff_key("alias_admin"))
    tenant = api.headers(org.admin_key)
    for operation in operations:
        headers = staff if operation.path.startswith("/v1/staff/") else tenant
        _check_operation(api, operation, headers, str(org.org_id))


def test_document_is_complete(api: RunningApi) -> None:
    document = api.client.get("/openapi.json").json()
    assert "bearer" in str(document["components"]["securitySchemes"]).lower()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation.get("description"), f"{where}: no description (docstring)"
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), where
            for code, response in responses.items():
                if code[0] in "45":
                    content = response["content"]
                    assert "application/problem+json" in content, where
                    if path.startswith("/v1/"):
                        assert list(content) == ["application/problem+json"], where
                    assert content["application/problem+json"]["example"]["status"] == int(code)
            if path.startswith("/v1/"):
                assert {"401", "403", "422", "429"} <= set(responses), where
            for param in operation.get("parameters", []):
                if param["in"] == "path" and param["name"] == "org_id":
                    assert param["schema"]["type"] == "string", where

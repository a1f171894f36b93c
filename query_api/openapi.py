"""The OpenAPI document: errors documented as problem+json, and the API's description."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from query_api.errors import PROBLEM_MEDIA_TYPE, Problem

DESCRIPTION = """\
Read side of AEOS Observability: the views of each client org and of ALIAS staff.

**Credentials.** `Authorization: Bearer <API key>` (org `admin` / `member` keys read their
own org; `alias_admin` / `alias_support` keys read every org) or an OIDC access token of a
configured issuer. Ingest keys get 403.

**Scopes.** `/v1/…` answers for the credential's own org, never an org from the URL;
`/v1/staff/orgs/{org_id}/…` serves the same views of any org to staff, read-only.

**Conventions.** Times are RFC 3339 (with an offset) or epoch milliseconds in requests
and RFC 3339 in answers; ranges are `[start, end)`, the last 24 h by default. Lists are
keyset-paged: pass `next_cursor` back as `cursor`. Tabular routes answer CSV to
`Accept: text/csv`. Errors are `application/problem+json` (RFC 9457) with a stable
`type` per kind (`https://aeos.dev/problems/<kind>`); a validation error lists each
rejected parameter in `errors`.
"""


def _problem_ref() -> dict[str, Any]:
    return {"schema": {"$ref": "#/components/schemas/Problem"}}


def _fix_errors(operation: dict[str, Any]) -> None:
    for status, response in operation.get("responses", {}).items():
        if str(status)[0] in "45":
            example = response.get("content", {}).get(PROBLEM_MEDIA_TYPE, {}).get("example")
            response["content"] = {PROBLEM_MEDIA_TYPE: _problem_ref()}
            if example is not None:
                response["content"][PROBLEM_MEDIA_TYPE]["example"] = example


def _drop_unused(schema: dict[str, Any]) -> None:
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def install_openapi(app: FastAPI) -> None:
    """Replaces ``app.openapi`` with one that documents every error as a problem document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=DESCRIPTION,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _fix_errors(operation)
        _drop_unused(schema)

        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

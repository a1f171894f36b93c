"""The OpenAPI document: errors documented as problem+json, and the API's description."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from query_api.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, Problem

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


_EXAMPLES: dict[str, tuple[str, str, str]] = {
    "400": (
        "query-too-broad",
        "Query too broad",
        "narrow the range to at most 31 days or add a filter",
    ),
    "401": ("unauthorized", "Unauthorized", "unknown or revoked API key"),
    "403": ("forbidden", "Forbidden", "needs an org admin credential"),
    "404": ("not-found", "Not found", "no task run 0c6f2b1e-… in this org"),
    "409": ("conflict", "Conflict", "an org named 'acme' already exists"),
    "429": (
        "rate-limited",
        "Too many requests",
        "this credential is over its rate limit; retry in 2 s",
    ),
    "503": (
        "unavailable",
        "Temporarily unavailable",
        "the database is unavailable or busy; retry shortly",
    ),
}


def _example(status: str, path: str) -> dict[str, Any]:
    if status == "422":
        return {
            "type": PROBLEM_BASE + "validation",
            "title": "Invalid parameter",
            "status": 422,
            "detail": "limit: Input should be less than or equal to 500",
            "instance": path,
            "errors": [{"param": "limit", "message": "Input should be less than or equal to 500"}],
        }
    kind, title, detail = _EXAMPLES.get(status, ("internal", "Internal error", "the server failed"))
    return {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": int(status),
        "detail": detail,
        "instance": path,
    }


def _fix_errors(path: str, operation: dict[str, Any]) -> None:
    # Routes of another API's dialect (``/jaeger``: Grafana's Jaeger data source) answer
    # their own JSON error envelope for bad parameters, and problem documents for ours.
    foreign = not path.startswith(("/v1/", "/healthz", "/readyz"))
    for status, response in operation.get("responses", {}).items():
        if str(status)[0] in "45":
            content: dict[str, Any] = {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": _example(str(status), path),
                }
            }
            if foreign:
                content["application/json"] = response.get("content", {}).get(
                    "application/json", {"schema": {"type": "object"}}
                )
                if "$ref" in str(content["application/json"].get("schema", {})):
                    content["application/json"] = {"schema": {"type": "object"}}
            response["content"] = content


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
        for path, path_item in schema.get("paths", {}).items():
            for operation in path_item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _fix_errors(path, operation)
        _drop_unused(schema)

        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

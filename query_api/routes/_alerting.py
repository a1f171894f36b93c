"""Helpers shared by the alerting routes: spec validation naming the field, who may write."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from query_api.deps import Principal
from query_api.errors import ApiError, ParamError
from storage import alert_spec


def validation_problem(errors: list[tuple[str, str]]) -> ApiError:
    """A 422 ``validation`` problem naming each field."""
    detail = "; ".join(f"{field}: {message}" for field, message in errors)
    return ApiError(
        422,
        "validation",
        "Invalid parameter",
        detail,
        errors=[ParamError(param=field, message=message) for field, message in errors],
    )


def rule_spec(body: BaseModel, principal: Principal) -> alert_spec.RuleSpec:
    """The validated rule spec of a request body.

    Raises:
        ApiError: 422 naming the field; 403 for a platform rule by anyone but alias_admin.
    """
    try:
        spec = alert_spec.RuleSpec.model_validate(body.model_dump())
    except ValidationError as exc:
        raise validation_problem(alert_spec.validation_errors(exc)) from None
    if spec.scope == "platform" and principal.role != "alias_admin":
        raise ApiError(403, "forbidden", "Forbidden", "only alias_admin may create platform rules")
    return spec


def endpoint_spec(body: BaseModel) -> alert_spec.EndpointSpec:
    """The validated endpoint spec of a request body (422 naming the field)."""
    try:
        return alert_spec.EndpointSpec.model_validate(body.model_dump())
    except ValidationError as exc:
        raise validation_problem(alert_spec.validation_errors(exc)) from None

"""``/v1/alert-rules``: alert rules CRUD, their history and instances; ``/v1/silences``.

Org admins write (``alias_admin`` on ``/v1/staff/orgs/{org_id}/…``), members and staff
read; every write is validated by the same spec the alerting engine evaluates.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Response

from query_api.deps import AdminConn, CurrentPrincipal, TargetOrg, ViewConn
from query_api.errors import validation_error
from query_api.models.alerts import (
    RULE_EXAMPLES,
    EvaluationPublic,
    HistoryPublic,
    InstancePublic,
    RuleBody,
    RulePublic,
    RulesPublic,
    SilenceBody,
    SilencePublic,
)
from query_api.params import TimeRangeParam
from query_api.routes._alerting import rule_spec
from storage import alert_config

router = APIRouter(tags=["alerts"])


def _public(rule: alert_config.StoredRule, status: tuple[str, int] | None) -> RulePublic:
    state, firing = status or (None, 0)
    return RulePublic(
        id=rule.id, org_id=rule.org_id, created_at=rule.created_at, updated_at=rule.updated_at,
        state=state, firing=firing, **rule.spec.model_dump(),
    )  # fmt: skip


@router.get("/alert-rules", response_model=RulesPublic, summary="Alert rules")
def list_rules(conn: ViewConn) -> RulesPublic:
    """The org's alert rules with their current state."""
    status = alert_config.rule_status(conn)
    return RulesPublic(data=[_public(r, status.get(r.id)) for r in alert_config.list_rules(conn)])


@router.post("/alert-rules", response_model=RulePublic, status_code=201, summary="Create a rule")
def create_rule(
    conn: AdminConn,
    org_id: TargetOrg,
    principal: CurrentPrincipal,
    body: Annotated[RuleBody, Body(openapi_examples=RULE_EXAMPLES)],
) -> RulePublic:
    """Adds a rule; it is evaluated from the next scheduler turn."""
    return _public(alert_config.create_rule(conn, org_id, rule_spec(body, principal)), None)


@router.get("/alert-rules/{rule_id}", response_model=RulePublic, summary="One rule")
def get_rule(conn: ViewConn, rule_id: uuid.UUID) -> RulePublic:
    """A rule and its state."""
    return _public(
        alert_config.get_rule(conn, rule_id), alert_config.rule_status(conn).get(rule_id)
    )


@router.put("/alert-rules/{rule_id}", response_model=RulePublic, summary="Replace a rule")
def update_rule(
    conn: AdminConn,
    principal: CurrentPrincipal,
    rule_id: uuid.UUID,
    body: Annotated[RuleBody, Body(openapi_examples=RULE_EXAMPLES)],
) -> RulePublic:
    """Replaces a rule's definition; it is re-evaluated at the next scheduler turn."""
    rule = alert_config.update_rule(conn, rule_id, rule_spec(body, principal))
    return _public(rule, alert_config.rule_status(conn).get(rule_id))


@router.delete("/alert-rules/{rule_id}", status_code=204, summary="Delete a rule")
def delete_rule(conn: AdminConn, rule_id: uuid.UUID) -> Response:
    """Deletes a rule, its instances and its silences."""
    alert_config.delete_rule(conn, rule_id)
    return Response(status_code=204)


@router.get("/alert-rules/{rule_id}/history", response_model=HistoryPublic, summary="Rule history")
def rule_history(conn: ViewConn, rule_id: uuid.UUID, rng: TimeRangeParam) -> HistoryPublic:
    """Every evaluation of the rule in the range (newest first) and its instances now."""
    alert_config.get_rule(conn, rule_id)  # 404 for an unknown rule
    history = alert_config.rule_history(conn, rule_id, rng.start, rng.end)
    return HistoryPublic(
        data=[EvaluationPublic(**h) for h in history],
        instances=[InstancePublic(**i) for i in alert_config.rule_states(conn, rule_id)],
    )


@router.get("/silences", response_model=list[SilencePublic], summary="Silences")
def list_silences(conn: ViewConn) -> list[SilencePublic]:
    """Silences in force or to come."""
    return [SilencePublic(**s) for s in alert_config.list_silences(conn, datetime.now(UTC))]


@router.post("/silences", response_model=SilencePublic, status_code=201, summary="Add a silence")
def add_silence(
    conn: AdminConn, org_id: TargetOrg, principal: CurrentPrincipal, body: SilenceBody
) -> SilencePublic:
    """Mutes notifications of a rule (or of every rule) whose labels match, until ``ends_at``."""
    starts = body.starts_at or datetime.now(UTC)
    if body.ends_at <= starts:
        raise validation_error("ends_at", "must be after starts_at")
    if body.rule_id is not None:
        alert_config.get_rule(conn, body.rule_id)
    silence_id = alert_config.add_silence(
        conn, org_id, rule_id=body.rule_id, matchers=body.matchers, starts_at=starts,
        ends_at=body.ends_at, comment=body.comment, created_by=principal.subject,
    )  # fmt: skip
    return SilencePublic(id=silence_id, rule_id=body.rule_id, matchers=body.matchers,
                         starts_at=starts, ends_at=body.ends_at, comment=body.comment,
                         created_by=principal.subject)  # fmt: skip


@router.delete("/silences/{silence_id}", status_code=204, summary="End a silence")
def delete_silence(conn: AdminConn, silence_id: uuid.UUID) -> Response:
    """Ends a silence now."""
    alert_config.delete_silence(conn, silence_id)
    return Response(status_code=204)

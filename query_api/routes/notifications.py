"""``/v1/notifications`` (the in-app inbox) and ``/v1/incidents`` (Anomalies & Incidents).

Members read and mark read; ``alias_support`` reads only. ``/v1/staff/incidents`` is the
feed across every org.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import Connection

from query_api.deps import (
    AppEngine,
    CurrentPrincipal,
    StaffReadConn,
    TargetOrg,
    ViewConn,
    scope_for,
)
from query_api.errors import ApiError
from query_api.models.alerts import (
    IncidentPublic,
    IncidentsPublic,
    MarkedRead,
    NotificationPublic,
    NotificationsPublic,
)
from storage import NotFoundError, alert_config, scoped_transaction

router = APIRouter(tags=["alerts"])
staff_router = APIRouter(tags=["alerts", "staff"])

Recent = Annotated[int, Query(ge=1, le=90, description="Resolved incidents of the last N days.")]


@router.get("/notifications", response_model=NotificationsPublic, summary="Inbox")
def list_notifications(
    conn: ViewConn,
    unread: Annotated[bool, Query(description="Only unread notifications.")] = False,
    type: Annotated[str | None, Query(description="alert.firing, budget.threshold, …")] = None,
    severity: Literal["info", "warning", "critical"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationsPublic:
    """The org's notifications, newest first, with the unread count."""
    found, unread_count = alert_config.list_notifications(
        conn, unread_only=unread, type_=type, severity=severity, limit=limit
    )
    return NotificationsPublic(
        data=[NotificationPublic(**n) for n in found], unread_count=unread_count
    )


def _mark(
    engine: AppEngine, principal: CurrentPrincipal, org_id: uuid.UUID, one: uuid.UUID | None
) -> int:
    if principal.role == "alias_support":
        raise ApiError(403, "forbidden", "Forbidden", "alias_support is read-only")
    with scoped_transaction(engine, scope_for(principal, org_id)) as conn:
        return _mark_in(conn, one)


def _mark_in(conn: Connection, one: uuid.UUID | None) -> int:
    marked = alert_config.mark_read(conn, datetime.now(UTC), one)
    if one is not None and marked == 0:
        found, _ = alert_config.list_notifications(conn, limit=500)
        if not any(n["id"] == one for n in found):
            raise NotFoundError(f"no notification {one}")
    return marked


@router.post("/notifications/read-all", response_model=MarkedRead, summary="Mark all read")
def mark_all_read(engine: AppEngine, principal: CurrentPrincipal, org_id: TargetOrg) -> MarkedRead:
    """Marks every unread notification read."""
    return MarkedRead(marked=_mark(engine, principal, org_id, None))


@router.post(
    "/notifications/{notification_id}/read", response_model=MarkedRead, summary="Mark one read"
)
def mark_one_read(
    engine: AppEngine, principal: CurrentPrincipal, org_id: TargetOrg, notification_id: uuid.UUID
) -> MarkedRead:
    """Marks one notification read (0 if it was read already)."""
    return MarkedRead(marked=_mark(engine, principal, org_id, notification_id))


def _incidents(conn: Connection, days: int) -> IncidentsPublic:
    found = alert_config.incidents(conn, datetime.now(UTC) - timedelta(days=days))
    data = [IncidentPublic(**i) for i in found]
    return IncidentsPublic(data=data, firing=sum(i.is_firing for i in data))


@router.get("/incidents", response_model=IncidentsPublic, summary="Anomalies & Incidents")
def incidents(conn: ViewConn, days: Recent = 7) -> IncidentsPublic:
    """Alerts firing now and those resolved lately, newest first."""
    return _incidents(conn, days)


@staff_router.get("/incidents", response_model=IncidentsPublic, summary="Incidents of all orgs")
def staff_incidents(conn: StaffReadConn, days: Recent = 7) -> IncidentsPublic:
    """The feed across every org (ALIAS staff)."""
    return _incidents(conn, days)

"""The API's routers. To add routes, add ONE line to :data:`ROUTERS`.

Tenant view routers are mounted twice by :func:`view_routes`: under ``/v1`` (the org of
the credential) and under ``/v1/staff/orgs/{org_id}`` (any org, for ALIAS staff).
"""

from __future__ import annotations

from fastapi import APIRouter

from query_api.deps import STAFF_ORG_PREFIX
from query_api.routes import (
    agents,
    alert_rules,
    costs,
    events,
    jaeger,
    me,
    notification_endpoints,
    notifications,
    overview,
    query,
    staff,
    subsystems,
    task_runs,
    traces,
)

TENANT_PREFIX = "/v1"


def view_routes(router: APIRouter) -> list[tuple[APIRouter, str]]:
    """The two mounts of a tenant view router: own org, and any org for staff."""
    return [(router, TENANT_PREFIX), (router, STAFF_ORG_PREFIX)]


ROUTERS: list[tuple[APIRouter, str]] = [
    (me.router, TENANT_PREFIX),
    *view_routes(traces.router),
    (jaeger.router, "/jaeger"),
    *view_routes(alert_rules.router),
    *view_routes(notification_endpoints.router),
    *view_routes(notifications.router),
    (notifications.staff_router, "/v1/staff"),
    *view_routes(overview.router),
    *view_routes(agents.router),
    *view_routes(task_runs.router),
    *view_routes(costs.router),
    *view_routes(subsystems.router),
    *view_routes(query.router),
    *view_routes(events.router),
    (staff.router, TENANT_PREFIX),
]

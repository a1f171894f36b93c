"""Staff views across every org (``alias_admin``, ``alias_support``; read-only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from query_api.deps import StaffReadConn
from query_api.errors import ERROR_RESPONSES
from query_api.models.staff import (
    FailingAgentOut,
    GlobalOverviewOut,
    OrgExplorerRowOut,
    PlatformHealthOut,
)
from query_api.paging import Page
from query_api.params import TimeRangeParam
from query_api.routes._views import LivenessDep, now
from query_api.tabular import CSV_RESPONSE, tabular
from storage import ORG_SORTS, fleet_explorer, global_overview, org_explorer, platform_health

router = APIRouter(tags=["staff"])
_ERRORS: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (400, 401, 403, 422)}
OrgSort = Literal[ORG_SORTS]  # type: ignore[valid-type]


@router.get(
    "/staff/overview",
    response_model=GlobalOverviewOut,
    responses=_ERRORS,
    summary="Global overview",
)
def overview(conn: StaffReadConn, rng: TimeRangeParam, live: LivenessDep) -> GlobalOverviewOut:
    """Orgs, agents by status, requests, error rate, latency and cost across all orgs,
    from the platform rollups."""
    return GlobalOverviewOut.model_validate(
        global_overview(conn, start=rng.start, end=rng.end, now=now(), liveness=live)
    )


@router.get(
    "/staff/org-explorer",
    response_model=Page[OrgExplorerRowOut],
    responses={**_ERRORS, **CSV_RESPONSE},
    summary="Org explorer",
)
def orgs(
    request: Request,
    conn: StaffReadConn,
    rng: TimeRangeParam,
    live: LivenessDep,
    plan: Literal["free", "pro", "enterprise"] | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the org name.")] = None,
    sort: OrgSort = "name",
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    """Every org with plan, volume, error rate and p95 over the range, cost month to date,
    agents offline and its health score (0-100: 40 for errors, 30 for latency, 30 for
    agents online; see the ``health_*`` parts)."""
    rows = [
        OrgExplorerRowOut(
            org_id=o.org_id,
            name=o.name,
            plan=o.plan,
            requests=o.red.requests,
            errors=o.red.errors,
            error_rate=o.red.error_rate,
            p95_ms=o.red.p95_ms,
            cost_mtd_usd=o.cost_mtd_usd,
            agents=o.agents,
            agents_offline=o.agents_offline,
            health_score=o.health.score,
            health_errors=o.health.errors,
            health_latency=o.health.latency,
            health_agents=o.health.agents,
        )
        for o in org_explorer(
            conn,
            start=rng.start,
            end=rng.end,
            now=now(),
            liveness=live,
            plan=plan,
            name_contains=q,
            sort=sort,
            descending=order == "desc",
        )
    ]
    return tabular(request, rows, OrgExplorerRowOut)


@router.get(
    "/staff/fleet-explorer",
    response_model=Page[FailingAgentOut],
    responses={**_ERRORS, **CSV_RESPONSE},
    summary="Fleet explorer",
)
def failing(
    request: Request,
    conn: StaffReadConn,
    rng: TimeRangeParam,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """The top failing agents across orgs over the range (at most 31 days): ranked by
    the lower bound of the 95 % Wilson interval of their error rate, which weights the
    rate by volume."""
    rows = [
        FailingAgentOut.model_validate(a)
        for a in fleet_explorer(conn, start=rng.start, end=rng.end, limit=limit)
    ]
    return tabular(request, rows, FailingAgentOut)


@router.get(
    "/staff/platform-health",
    response_model=PlatformHealthOut,
    responses=_ERRORS,
    summary="Platform health",
)
def health(
    conn: StaffReadConn,
    window: Annotated[int, Query(ge=1, le=31 * 24, description="Hours back from now.")] = 1,
) -> PlatformHealthOut:
    """Receiver processes with accepted / rejected / refused counts and commit latency,
    scheduler runs and failures, and the size of every relation."""
    end = now()
    return PlatformHealthOut.model_validate(
        platform_health(conn, start=end - timedelta(hours=window), end=end)
    )

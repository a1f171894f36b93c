"""``/agents``, ``/agents/{agent_id}`` and ``/fleets`` (tenant views)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from query_api.deps import ViewConn
from query_api.errors import ERROR_RESPONSES, ApiError
from query_api.models.agents import AgentDetailOut, AgentOut, AgentRowOut, FleetOut
from query_api.paging import DEFAULT_PAGE_SIZE, Page, PageSize, encode_cursor
from query_api.params import TimeRangeParam
from query_api.routes._views import (
    CursorQuery,
    LivenessDep,
    StepQuery,
    availability,
    cursor_values,
    now,
    parse_step,
)
from query_api.tabular import CSV_RESPONSE, tabular
from storage import agent_detail, list_agents, list_fleets

router = APIRouter(tags=["agents"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    k: ERROR_RESPONSES[k] for k in (400, 401, 403, 404, 422)
}
Status = Literal["online", "degraded", "offline"]


@router.get(
    "/agents",
    response_model=Page[AgentRowOut],
    responses={**_ERRORS, **CSV_RESPONSE},
    summary="Agents",
)
def agents(
    request: Request,
    conn: ViewConn,
    rng: TimeRangeParam,
    live: LivenessDep,
    fleet_id: Annotated[str | None, Query(max_length=200)] = None,
    subsystem: Annotated[str | None, Query(max_length=50)] = None,
    status: Status | None = None,
    cursor: CursorQuery = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
) -> Response:
    """The org's agents by id: fleet, subsystem, version, status (offline when silent for
    longer than a multiple of its heartbeat interval), last heartbeat, utilisation, and
    error rate and p95 over the range."""
    after = cursor_values(cursor, {"agent_id": str})
    at = now()
    page = list_agents(
        conn,
        start=rng.start,
        end=rng.end,
        now=at,
        available=availability(conn, at),
        liveness=live,
        fleet_id=fleet_id,
        subsystem=subsystem,
        status=status,
        after=after["agent_id"] if after else None,
        limit=limit,
    )
    rows = [
        AgentRowOut.model_validate(
            {
                **{k: getattr(a, k) for k in AgentRowOut.model_fields if hasattr(a, k)},
                "requests": a.red.requests,
                "errors": a.red.errors,
                "error_rate": a.red.error_rate,
                "p95_ms": a.red.p95_ms,
            }
        )
        for a in page.agents
    ]
    token = encode_cursor({"agent_id": page.next_after}) if page.next_after else None
    return tabular(request, rows, AgentRowOut, next_cursor=token)


@router.get(
    "/agents/{agent_id}", response_model=AgentDetailOut, responses=_ERRORS, summary="One agent"
)
def agent(
    conn: ViewConn,
    rng: TimeRangeParam,
    live: LivenessDep,
    agent_id: Annotated[str, Path(max_length=200)],
    step: StepQuery = None,
) -> AgentDetailOut:
    """An agent, its stats over the range and its RED series (``level``: the rollup read)."""
    at = now()
    avail = availability(conn, at)
    got = agent_detail(
        conn,
        agent_id,
        start=rng.start,
        end=rng.end,
        step=parse_step(step, rng.start, rng.end, avail),
        now=at,
        available=avail,
        liveness=live,
    )
    if got is None:
        raise ApiError(404, "not-found", "Not found", f"no agent {agent_id!r} in this org")
    return AgentDetailOut(
        agent=AgentOut.model_validate(got.agent),
        series=[{"t": p.t, "red": p.red} for p in got.series],  # type: ignore[misc]
        level=got.plan.level,
        step_seconds=int(got.plan.step.total_seconds()),
    )


@router.get("/fleets", response_model=list[FleetOut], responses=_ERRORS, summary="Fleets")
def fleets(conn: ViewConn, live: LivenessDep) -> list[FleetOut]:
    """Every fleet with its agents by status and by version (version skew); agents
    without a fleet are under ``""``."""
    return [FleetOut.model_validate(f) for f in list_fleets(conn, now=now(), liveness=live)]

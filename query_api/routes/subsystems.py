"""``/mosaic``, ``/damn`` and ``/uce`` (tenant views)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from query_api.deps import ViewConn
from query_api.errors import ERROR_RESPONSES
from query_api.models.subsystems import DamnOut, MosaicOut, UceOut
from query_api.params import TimeRangeParam
from query_api.routes._views import LivenessDep, StepQuery, availability, now, parse_step
from storage import damn_view, mosaic_view, uce_view

router = APIRouter(tags=["subsystems"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    k: ERROR_RESPONSES[k] for k in (400, 401, 403, 404, 422)
}


def _plan(view: Any) -> dict[str, Any]:
    return {"level": view.plan.level, "step_seconds": int(view.plan.step.total_seconds())}


def _fields(view: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(view, n) for n in names} | _plan(view)


@router.get("/mosaic", response_model=MosaicOut, responses=_ERRORS, summary="MOSAIC")
def mosaic(conn: ViewConn, rng: TimeRangeParam, step: StepQuery = None) -> MosaicOut:
    """Routing decisions by route with success rate, the handoff graph (agents with their
    span volume; handoffs with counts) and the orchestration timeline."""
    at = now()
    avail = availability(conn, at)
    got = mosaic_view(
        conn,
        start=rng.start,
        end=rng.end,
        step=parse_step(step, rng.start, rng.end, avail),
        available=avail,
    )
    return MosaicOut.model_validate(_fields(got, ("routes", "nodes", "edges", "timeline")))


@router.get("/damn", response_model=DamnOut, responses=_ERRORS, summary="DAMN")
def damn(conn: ViewConn, rng: TimeRangeParam, live: LivenessDep, step: StepQuery = None) -> DamnOut:
    """The fleet health grid (agent x status), heartbeat uptime per agent over time, the
    version distribution and the queue depth series."""
    at = now()
    avail = availability(conn, at)
    got = damn_view(
        conn,
        start=rng.start,
        end=rng.end,
        step=parse_step(step, rng.start, rng.end, avail),
        now=at,
        available=avail,
        liveness=live,
    )
    return DamnOut.model_validate(
        _fields(got, ("grid", "by_status", "uptime", "versions", "queue_depth"))
    )


@router.get("/uce", response_model=UceOut, responses=_ERRORS, summary="UCE")
def uce(
    conn: ViewConn,
    rng: TimeRangeParam,
    step: StepQuery = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> UceOut:
    """Context operations per minute by operation, context size p50/p95, cache hit ratio
    and the top contexts by churn (over the last day of the range)."""
    at = now()
    avail = availability(conn, at)
    got = uce_view(
        conn,
        start=rng.start,
        end=rng.end,
        step=parse_step(step, rng.start, rng.end, avail),
        available=avail,
        top=top,
    )
    return UceOut.model_validate(
        _fields(got, ("operations", "overall", "ops_per_minute", "top_contexts"))
    )

"""``/overview`` and ``/settings`` of an org (tenant views; also under the staff org path)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from query_api.deps import ViewConn
from query_api.errors import ERROR_RESPONSES
from query_api.models.org_settings import OrgSettingsOut
from query_api.models.overview import OverviewOut
from query_api.params import TimeRangeParam
from query_api.routes._views import LivenessDep, availability, now
from storage import org_overview, org_settings

router = APIRouter(tags=["overview"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    k: ERROR_RESPONSES[k] for k in (400, 401, 403, 404, 422)
}


@router.get("/overview", response_model=OverviewOut, responses=_ERRORS, summary="Org overview")
def overview(conn: ViewConn, rng: TimeRangeParam, live: LivenessDep) -> OverviewOut:
    """Requests, success and error rate, latency p50/p95/p99, throughput per minute, task
    runs by status and cost with the top models, for the range (default the last 24 h),
    today and month to date (UTC); agents online / degraded / offline; alerts firing.

    Read from the rollups, exact to the minute (``coverage`` says what was read)."""
    at = now()
    got = org_overview(
        conn, start=rng.start, end=rng.end, now=at, available=availability(conn, at), liveness=live
    )
    return OverviewOut.model_validate(
        {
            "range": _period(got.range),
            "today": _period(got.today),
            "month_to_date": _period(got.month_to_date),
            "agents": got.agents,
            "alerts_firing": got.alerts_firing,
        }
    )


def _period(p: Any) -> dict[str, Any]:
    red = p.red
    success = None if red.error_rate is None else 1 - red.error_rate
    return {
        "start": p.start,
        "end": p.end,
        "red": red,
        "success_rate": success,
        "throughput_per_min": p.throughput_per_min,
        "task_runs": p.task_runs,
        "cost": p.cost,
        "top_models": p.top_models,
        "coverage": p.coverage,
    }


@router.get("/settings", response_model=OrgSettingsOut, responses=_ERRORS, summary="Org settings")
def settings(conn: ViewConn) -> OrgSettingsOut:
    """The org's plan, the retention windows in force (plan or override) and its trace
    sampling percent."""
    return OrgSettingsOut.model_validate(org_settings(conn))

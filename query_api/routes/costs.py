"""``/costs`` (tenant view)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from query_api.deps import ViewConn
from query_api.errors import ERROR_RESPONSES
from query_api.models.costs import CostReportOut, CostRowOut
from query_api.models.overview import CostTotalsOut
from query_api.params import TimeRangeParam
from query_api.tabular import CSV_MEDIA_TYPE, CSV_RESPONSE, to_csv, wants_csv
from storage import cost_report

router = APIRouter(tags=["costs"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    k: ERROR_RESPONSES[k] for k in (400, 401, 403, 404, 422)
}
Dim = Literal["model", "provider", "agent", "fleet", "subsystem"]


@router.get(
    "/costs",
    response_model=CostReportOut,
    responses={**_ERRORS, **CSV_RESPONSE},
    summary="Cost and tokens",
)
def costs(
    request: Request,
    conn: ViewConn,
    rng: TimeRangeParam,
    group_by: Annotated[list[Dim] | None, Query(description="Any of the dimensions.")] = None,
    period: Literal["day", "week", "month"] | None = None,
    top: Annotated[
        int | None,
        Query(ge=1, le=100, description="Keep the N costliest groups; fold the rest into (other)."),
    ] = None,
) -> Response:
    """Cost (USD, exact) and tokens in, out, cache read and cache creation over the range,
    per UTC day, ISO week or month, grouped by any of model, provider, agent, fleet and
    subsystem. The totals equal the sum of the line items in the range."""
    report = cost_report(
        conn, start=rng.start, end=rng.end, group_by=group_by or (), period=period, top=top
    )
    rows = [
        CostRowOut.model_validate({"period": g.period, **g.key, **_totals(g.totals)})
        for g in report.groups
    ]
    if wants_csv(request):
        return Response(to_csv(rows, CostRowOut), media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8")
    body = CostReportOut(
        data=rows,
        totals=CostTotalsOut.model_validate(report.totals),
        start=report.start,
        end=report.end,
    )
    return JSONResponse(body.model_dump(mode="json"))


def _totals(t: Any) -> dict[str, Any]:
    return {k: getattr(t, k) for k in CostTotalsOut.model_fields}

"""``/task-runs`` and ``/task-runs/{task_run_id}`` (tenant views)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from query_api.deps import ViewConn
from query_api.errors import ERROR_RESPONSES, ApiError
from query_api.models.task_runs import TaskRunDetailOut, TaskRunOut
from query_api.paging import DEFAULT_PAGE_SIZE, Page, PageSize, encode_cursor
from query_api.params import TimeRangeParam
from query_api.routes._views import CursorQuery, cursor_values, now
from query_api.tabular import CSV_RESPONSE, tabular
from storage import search_task_runs, task_run_detail

router = APIRouter(tags=["task runs"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    k: ERROR_RESPONSES[k] for k in (400, 401, 403, 404, 422)
}
RunStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
_SORT_TYPES: dict[str, type] = {"time": datetime, "duration": float, "cost": Decimal}


@router.get(
    "/task-runs",
    response_model=Page[TaskRunOut],
    responses={**_ERRORS, **CSV_RESPONSE},
    summary="Search task runs",
)
def task_runs(
    request: Request,
    conn: ViewConn,
    rng: TimeRangeParam,
    status: Annotated[list[RunStatus] | None, Query()] = None,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    fleet_id: Annotated[str | None, Query(max_length=200)] = None,
    task_id: Annotated[str | None, Query(max_length=200)] = None,
    min_duration_ms: Annotated[float | None, Query(ge=0)] = None,
    max_duration_ms: Annotated[float | None, Query(ge=0)] = None,
    min_cost: Annotated[Decimal | None, Query(ge=0)] = None,
    max_cost: Annotated[Decimal | None, Query(ge=0)] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in the task title or run id.")
    ] = None,
    sort: Literal["time", "duration", "cost"] = "time",
    order: Literal["desc", "asc"] = "desc",
    cursor: CursorQuery = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
) -> Response:
    """Runs started in the range matching every filter, sorted by start time, duration
    or cost (keyset paging: pass ``next_cursor`` back as ``cursor``)."""
    mark = cursor_values(cursor, {"sort": str, "order": str, "v": _SORT_TYPES[sort], "id": str})
    if mark is not None and (mark["sort"], mark["order"]) != (sort, order):
        raise ApiError(400, "invalid-cursor", "Invalid cursor", "cursor: issued for another sort")
    page = search_task_runs(
        conn,
        start=rng.start,
        end=rng.end,
        statuses=status or (),
        agent_id=agent_id,
        fleet_id=fleet_id,
        task_id=task_id,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        min_cost=min_cost,
        max_cost=max_cost,
        text=q,
        sort=sort,
        descending=order == "desc",
        after=(mark["v"], mark["id"]) if mark else None,
        limit=limit,
    )
    rows = [TaskRunOut.model_validate(r) for r in page.runs]
    token = None
    if page.next_after is not None:
        value = page.next_after[0]
        value = float(value) if sort == "duration" else value
        token = encode_cursor({"sort": sort, "order": order, "v": value, "id": page.next_after[1]})
    return tabular(request, rows, TaskRunOut, next_cursor=token)


@router.get(
    "/task-runs/{task_run_id}",
    response_model=TaskRunDetailOut,
    responses=_ERRORS,
    summary="One task run",
)
def task_run(conn: ViewConn, task_run_id: Annotated[str, Path(max_length=200)]) -> TaskRunDetailOut:
    """A run with its cost line items (they sum to its cost) and its events."""
    got = task_run_detail(conn, task_run_id, now=now())
    if got is None:
        raise ApiError(404, "not-found", "Not found", f"no task run {task_run_id!r} in this org")
    return TaskRunDetailOut.model_validate(
        {
            "run": got.run,
            "attributes": got.run.attributes,
            "cost_items": got.cost_items,
            "events": got.events,
        }
    )

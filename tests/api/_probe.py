"""A probe router for the foundation tests: reports what each connection dependency gives.

Mounted only by the tests (``start_api(routers=PROBE_ROUTERS)``), it shows which role,
org and read-only state a request's transaction really has, from the database itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection, text

from query_api.deps import (
    AdminConn,
    AppEngine,
    CurrentPrincipal,
    StaffReadConn,
    StaffWriteConn,
    TargetOrg,
    ViewConn,
    scope_for,
)
from query_api.paging import DEFAULT_PAGE_SIZE, Page, PageSize, decode_cursor, encode_cursor
from query_api.params import TimeRangeParam
from query_api.routes import TENANT_PREFIX, view_routes
from query_api.tabular import CSV_RESPONSE, tabular
from storage.transaction import scoped_transaction


class Seen(BaseModel):
    """What the database says about the request's transaction."""

    role: str
    org: str
    read_only: bool


class Row(BaseModel):
    """A row of the tabular probe."""

    n: int
    label: str
    tags: list[str]
    note: str | None


def _seen(conn: Connection) -> Seen:
    row = conn.execute(
        text(
            "SELECT current_user, current_setting('aeos.org_id', true), "
            "current_setting('transaction_read_only') = 'on'"
        )
    ).one()
    return Seen(role=row[0], org=row[1] or "", read_only=row[2])


views = APIRouter(tags=["probe"])
tenant_only = APIRouter(tags=["probe"])


@views.get("/probe/view", response_model=Seen)
def probe_view(conn: ViewConn) -> Seen:
    return _seen(conn)


@views.post("/probe/view-write")
def probe_view_write(conn: ViewConn) -> None:
    conn.execute(text("UPDATE orgs SET settings = settings"))


@views.get("/probe/admin", response_model=Seen)
def probe_admin(conn: AdminConn) -> Seen:
    return _seen(conn)


@views.get("/probe/engine", response_model=Seen)
def probe_engine(engine: AppEngine, principal: CurrentPrincipal, org: TargetOrg) -> Seen:
    with scoped_transaction(engine, scope_for(principal, org)) as conn:
        return _seen(conn)


@tenant_only.get("/probe/staff-read", response_model=Seen)
def probe_staff_read(conn: StaffReadConn) -> Seen:
    return _seen(conn)


@tenant_only.get("/probe/staff-write", response_model=Seen)
def probe_staff_write(conn: StaffWriteConn) -> Seen:
    return _seen(conn)


@tenant_only.get("/probe/rows", response_model=Page[Row], responses=CSV_RESPONSE)
def probe_rows(
    request: Request,
    principal: CurrentPrincipal,
    rng: TimeRangeParam,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    start = decode_cursor(cursor)["n"] if cursor else 0
    rows = [
        Row(n=n, label=f'row "{n}", ok', tags=["a", "b"], note=None if n % 2 else "x")
        for n in range(start, min(start + limit, 7))
    ]
    more = rows and rows[-1].n < 6
    next_cursor = encode_cursor({"n": rows[-1].n + 1, "at": rng.end}) if more else None
    return tabular(request, rows, Row, next_cursor=next_cursor)


PROBE_ROUTERS = [*view_routes(views), (tenant_only, TENANT_PREFIX)]

"""bench/api.py part 3: each view's numbers from the readers (rollups) and from raw spans.

Each entry of :data:`RAW_VIEWS` has a rollup side (the reader the route calls, in the
same scoped transaction a request gets) and a raw side (plain SQL over ``spans``) that
answer the same numbers: ``{key: (requests, errors, p95_ms)}``. Ranges end on a whole
minute (or hour for the hourly series), which the readers read exactly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from storage.read import (
    Availability,
    Measure,
    MetricsQuery,
    global_overview,
    list_agents,
    org_explorer,
    org_overview,
    run_query,
)
from storage.read._common import floor_to
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction

Numbers = dict[Any, tuple[int, int, float | None]]
P95_TOLERANCE = 0.01 + 1e-9
_RAW = (
    "count(*) AS n, count(*) FILTER (WHERE status_code = 2) AS e, "
    "percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p"
)


@dataclass(frozen=True)
class RawView:
    """A view: its scope, and its numbers from the rollups and from raw rows."""

    staff: bool
    rollups: Callable[[Connection, datetime], Numbers]
    raw: Callable[[Connection, datetime], Numbers]


def _red(red: Any) -> tuple[int, int, float | None]:
    return (red.requests, red.errors, red.p95_ms)


def _raw(conn: Connection, sql: str, **params: Any) -> Numbers:
    return {
        r[0] if len(r) > 3 else "": (int(r.n), int(r.e), r.p)
        for r in conn.execute(text(sql), params)
    }


def overview_rollups(conn: Connection, end: datetime) -> Numbers:
    got = org_overview(
        conn, start=end - timedelta(days=1), end=end, now=end, available=Availability.unlimited()
    )
    return {
        "range": _red(got.range.red),
        "today": _red(got.today.red),
        "mtd": _red(got.month_to_date.red),
    }


def overview_raw(conn: Connection, end: datetime) -> Numbers:
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    out: Numbers = {}
    for name, lo in (
        ("range", end - timedelta(days=1)),
        ("today", midnight),
        ("mtd", midnight.replace(day=1)),
    ):
        sql = f"SELECT {_RAW} FROM spans WHERE start_time >= :lo AND start_time < :hi"
        out[name] = _raw(conn, sql, lo=lo, hi=end)[""]
    return out


def series_rollups(conn: Connection, end: datetime) -> Numbers:
    hi = floor_to(end, 3600)
    q = MetricsQuery(
        "org_red",
        (Measure("spans", "sum"), Measure("errors", "sum"), Measure("duration_ms", "p95")),
        hi - timedelta(days=30),
        hi,
        step=timedelta(hours=1),
    )
    return {
        r[0]: (int(r[1]), int(r[2]), r[3])
        for r in run_query(conn, q, available=Availability.unlimited()).rows
    }


def series_raw(conn: Connection, end: datetime) -> Numbers:
    hi = floor_to(end, 3600)
    return _raw(
        conn,
        "SELECT date_bin('1 hour', start_time, TIMESTAMPTZ '1970-01-01 00:00+00') AS b, "
        f"{_RAW} FROM spans WHERE start_time >= :lo AND start_time < :hi GROUP BY 1",
        lo=hi - timedelta(days=30),
        hi=hi,
    )


def agents_rollups(conn: Connection, end: datetime) -> Numbers:
    page = list_agents(
        conn,
        start=end - timedelta(days=1),
        end=end,
        now=end,
        available=Availability.unlimited(),
        limit=500,
    )
    return {a.agent_id: _red(a.red) for a in page.agents if a.red.requests}


def agents_raw(conn: Connection, end: datetime) -> Numbers:
    return _raw(
        conn,
        f"SELECT agent_id, {_RAW} FROM spans WHERE start_time >= :lo AND start_time < :hi "
        "GROUP BY 1",
        lo=end - timedelta(days=1),
        hi=end,
    )


def global_rollups(conn: Connection, end: datetime) -> Numbers:
    return {"": _red(global_overview(conn, start=end - timedelta(days=30), end=end, now=end).red)}


def global_raw(conn: Connection, end: datetime) -> Numbers:
    return _raw(
        conn,
        f"SELECT {_RAW} FROM spans WHERE start_time >= :lo AND start_time < :hi",
        lo=end - timedelta(days=30),
        hi=end,
    )


def explorer_rollups(conn: Connection, end: datetime) -> Numbers:
    rows = org_explorer(conn, start=end - timedelta(days=1), end=end, now=end)
    return {r.org_id: _red(r.red) for r in rows if r.red.requests}


def explorer_raw(conn: Connection, end: datetime) -> Numbers:
    return _raw(
        conn,
        f"SELECT org_id, {_RAW} FROM spans WHERE start_time >= :lo AND start_time < :hi GROUP BY 1",
        lo=end - timedelta(days=1),
        hi=end,
    )


RAW_VIEWS: dict[str, RawView] = {
    "org_overview": RawView(False, overview_rollups, overview_raw),
    "query_30d_hourly": RawView(False, series_rollups, series_raw),
    "agent_list": RawView(False, agents_rollups, agents_raw),
    "staff_global_overview": RawView(True, global_rollups, global_raw),
    "staff_org_explorer": RawView(True, explorer_rollups, explorer_raw),
}


def _timed(
    engine: Engine,
    scope: Scope,
    fn: Callable[[Connection, datetime], Numbers],
    end: datetime,
    runs: int,
) -> tuple[list[float], Numbers]:
    times, answer = [], {}
    for _ in range(runs):
        t0 = time.perf_counter()
        with scoped_transaction(engine, scope) as conn:
            answer = fn(conn, end)
        times.append((time.perf_counter() - t0) * 1000)
    return times, answer


def _disagreements(name: str, rollups: Numbers, raw: Numbers) -> list[str]:
    bad = (
        [f"{name}: keys differ ({len(rollups)} vs {len(raw)})"] if set(rollups) != set(raw) else []
    )
    for k in set(rollups) & set(raw):
        (n1, e1, p1), (n2, e2, p2) = rollups[k], raw[k]
        if (n1, e1) != (n2, e2):
            bad.append(f"{name} {k}: counts {(n1, e1)} != raw {(n2, e2)}")
        elif p2 and (p1 is None or abs(p1 - p2) > P95_TOLERANCE * p2):
            bad.append(f"{name} {k}: p95 {p1} vs raw {p2}")
    return bad


def compare(
    engine: Engine,
    org: uuid.UUID,
    now: datetime,
    views: dict[str, RawView],
    raw_runs: int,
    rollup_runs: int,
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Times both sides of every view; returns ratios and disagreements."""
    from bench.api import pct

    end = floor_to(now, 60)
    ratios, problems = {}, []
    for name, view in views.items():
        scope = Scope(DbRole.SUPPORT) if view.staff else Scope(DbRole.TENANT, org)
        fast, a = _timed(engine, scope, view.rollups, end, rollup_runs)
        slow, b = _timed(engine, scope, view.raw, end, raw_runs)
        problems += _disagreements(name, a, b)
        ratios[name] = {
            "rollups_p95_ms": round(pct(fast, 0.95), 2),
            "raw_p50_ms": round(pct(slow, 0.5), 1),
            "ratio": round(pct(slow, 0.5) / pct(fast, 0.95), 1),
        }
    return ratios, problems

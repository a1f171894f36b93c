"""The org overview: one range (default the last 24 h), today and month to date.

Requests, errors and latency come from ``org_red`` (cut into day/hour/minute buckets,
exact to the minute, see ``storage.read._common``); cost from ``storage.read.costs``
(exact); task runs by the time they started; agents by their effective status; alerts
firing as the alerting engine counts them (firing rule instances, ``storage.alerts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from storage.alerts.rules import firing_count
from storage.read._common import Availability, Coverage, check_span, coverage, segments
from storage.read._sql import overview as sql
from storage.read._sql.rollups import red_aggs, rollup_select
from storage.read.agents import DEFAULT_LIVENESS, Liveness, Red, agent_status_counts, red_of
from storage.read.costs import CostGroup, CostTotals, cost_report

MAX_OVERVIEW_RANGE = timedelta(days=400)
TOP_MODELS = 5


@dataclass(frozen=True, slots=True)
class Period:
    """What happened in one period."""

    start: datetime
    end: datetime
    red: Red
    throughput_per_min: float
    task_runs: dict[str, int]
    cost: CostTotals
    top_models: tuple[CostGroup, ...]
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class Overview:
    """The org overview."""

    range: Period
    today: Period
    month_to_date: Period
    agents: dict[str, int]
    alerts_firing: int


def red_over(
    conn: Connection, family: str, start: datetime, end: datetime, available: Availability
) -> tuple[Red, Coverage]:
    """RED of ``family`` (``org_red`` or ``platform_red``) over ``[start, end)``."""
    parts = segments(start, end, available)
    row = conn.execute(rollup_select(family, parts, red_aggs())).first()
    return red_of(row), coverage(parts)


def period(conn: Connection, start: datetime, end: datetime, available: Availability) -> Period:
    """One period of the overview."""
    red, cov = red_over(conn, "org_red", start, end, available)
    runs = {r.status: int(r.n) for r in conn.execute(sql.task_runs_by_status(start, end))}
    models = cost_report(conn, start=start, end=end, group_by=["model"], top=TOP_MODELS)
    top = tuple(g for g in models.groups if g.totals.cost_usd or g.totals.calls)
    minutes = (cov.end - cov.start).total_seconds() / 60 if cov.levels else 0
    return Period(
        start, end, red, red.requests / minutes if minutes else 0.0, runs, models.totals, top, cov
    )


def org_overview(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    available: Availability,
    liveness: Liveness = DEFAULT_LIVENESS,
) -> Overview:
    """The overview of the current org (see the module docstring)."""
    check_span(start, end, MAX_OVERVIEW_RANGE, "overview")
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight.replace(day=1)
    return Overview(
        range=period(conn, start, end, available),
        today=period(conn, midnight, now, available),
        month_to_date=period(conn, first, now, available),
        agents=agent_status_counts(conn, now=now, liveness=liveness),
        alerts_firing=firing_count(conn),
    )

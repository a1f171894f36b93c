"""Agents and fleets of the current org: status from heartbeat age, RED per agent.

An agent is ``offline`` when its last sign of life (newest heartbeat, or newest
sighting if it never sent one) is older than ``Liveness.multiple`` times its heartbeat
interval (``damn.heartbeat.interval`` of its newest heartbeat, else
``Liveness.default_interval_s``), whatever it last reported; otherwise its status is the
one its newest heartbeat reported. ``storage.jobs.agent_status`` writes that back to
``agents.status`` (a periodic job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from storage.read._common import (
    Availability,
    Coverage,
    SeriesPlan,
    coverage,
    ratio,
    segments,
    series_plan,
)
from storage.read._sql import agents as sql
from storage.read._sql.rollups import Filter, red_aggs, rollup_select, total
from storage.schema import agents

UTILIZATION_METRIC = "damn.agent.utilization"
MAX_AGENT_PAGE = 500


@dataclass(frozen=True, slots=True)
class Liveness:
    """When an agent counts as offline (settings ``AEOS_AGENT_*``)."""

    multiple: float = 3.0
    default_interval_s: float = 60.0


DEFAULT_LIVENESS = Liveness()


@dataclass(frozen=True, slots=True)
class Red:
    """Requests, errors and duration quantiles over a range."""

    requests: int
    errors: int
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent with its stats over the requested range."""

    agent_id: str
    fleet_id: str | None
    name: str
    subsystem: str
    version: str | None
    service_name: str | None
    status: str
    reported_status: str
    last_heartbeat_at: datetime | None
    last_seen_at: datetime | None
    heartbeat_interval_s: float | None
    utilization: float | None
    red: Red


@dataclass(frozen=True, slots=True)
class AgentPage:
    """A page of agents sorted by id; ``next_after`` continues it."""

    agents: tuple[Agent, ...]
    next_after: str | None
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One step of an agent's series."""

    t: datetime
    red: Red


@dataclass(frozen=True, slots=True)
class AgentDetail:
    """An agent, its stats over the range and its series."""

    agent: Agent
    series: tuple[SeriesPoint, ...]
    plan: SeriesPlan


def red_of(row: Any) -> Red:
    """A :class:`Red` from a row of ``red_aggs`` columns (or None: no traffic)."""
    if row is None:
        return Red(0, 0, None, None, None, None)
    requests, errors = int(row.span_count), int(row.error_count)
    return Red(
        requests,
        errors,
        ratio(errors, requests),
        row.duration_p50_ms,
        row.duration_p95_ms,
        row.duration_p99_ms,
    )


def list_agents(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    available: Availability,
    liveness: Liveness = DEFAULT_LIVENESS,
    fleet_id: str | None = None,
    subsystem: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> AgentPage:
    """A page of the org's agents (by id, after ``after``), with RED and utilisation."""
    limit = max(1, min(limit, MAX_AGENT_PAGE))
    base = sql.agent_rows(now, liveness.multiple, liveness.default_interval_s).subquery("a")
    stmt = base.select().order_by(base.c.agent_id).limit(limit + 1)
    if fleet_id is not None:
        stmt = stmt.where(base.c.fleet_id == fleet_id)
    if subsystem is not None:
        stmt = stmt.where(base.c.subsystem == subsystem)
    if status is not None:
        stmt = stmt.where(base.c.status == status)
    if after is not None:
        stmt = stmt.where(base.c.agent_id > after)
    rows = conn.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    parts = segments(start, end, available)
    ids = tuple(r.agent_id for r in rows)
    reds, utils = _stats(conn, parts, ids)
    out = tuple(_agent(r, reds.get(r.agent_id), utils.get(r.agent_id)) for r in rows)
    return AgentPage(out, rows[-1].agent_id if more and rows else None, coverage(parts))


def _stats(
    conn: Connection, parts: Sequence[Any], ids: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, float | None]]:
    if not ids or not parts:
        return {}, {}
    by_agent = [Filter("agent_id", "in", ids)]
    reds = {
        r.agent_id: r
        for r in conn.execute(
            rollup_select("span_red", parts, red_aggs(), dims=["agent_id"], filters=by_agent)
        )
    }
    util_filters = [Filter("metric", "eq", (UTILIZATION_METRIC,)), *by_agent]
    utils = {
        r.agent_id: ratio(r.value_sum, r.points)
        for r in conn.execute(
            rollup_select(
                "metric_rollup",
                parts,
                [total("sum", "value_sum"), total("count", "points")],
                dims=["agent_id"],
                filters=util_filters,
            )
        )
    }
    return reds, utils


def _agent(row: Any, red: Any, utilization: float | None) -> Agent:
    return Agent(
        agent_id=row.agent_id,
        fleet_id=row.fleet_id,
        name=row.name,
        subsystem=row.subsystem,
        version=row.version,
        service_name=row.service_name,
        status=row.status,
        reported_status=row.reported_status,
        last_heartbeat_at=row.last_heartbeat_at,
        last_seen_at=row.last_seen_at,
        heartbeat_interval_s=row.heartbeat_interval_s,
        utilization=utilization,
        red=red_of(red),
    )


def agent_detail(
    conn: Connection,
    agent_id: str,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    now: datetime,
    available: Availability,
    liveness: Liveness = DEFAULT_LIVENESS,
) -> AgentDetail | None:
    """One agent (None if the org has no such agent), its stats and RED series."""
    base = sql.agent_rows(now, liveness.multiple, liveness.default_interval_s)
    row = conn.execute(base.where(agents.c.agent_id == agent_id)).first()
    if row is None:
        return None
    parts = segments(start, end, available)
    reds, utils = _stats(conn, parts, (agent_id,))
    plan = series_plan(start, end, step, available)
    points = conn.execute(
        rollup_select(
            "span_red",
            [plan.segment()],
            red_aggs(),
            filters=[Filter("agent_id", "eq", (agent_id,))],
            step=plan.step,
        )
    )
    series = tuple(SeriesPoint(p.ts, red_of(p)) for p in points)
    return AgentDetail(_agent(row, reds.get(agent_id), utils.get(agent_id)), series, plan)


@dataclass(frozen=True, slots=True)
class Fleet:
    """A fleet with its agents by status and by version."""

    fleet_id: str
    name: str
    last_seen_at: datetime | None
    agents: int
    by_status: dict[str, int]
    by_version: dict[str, int]


def list_fleets(
    conn: Connection, *, now: datetime, liveness: Liveness = DEFAULT_LIVENESS
) -> tuple[Fleet, ...]:
    """Every fleet of the org (agents without a fleet under ``""``), by id."""
    names = {r.fleet_id: r for r in conn.execute(sql.fleet_rows())}
    statuses: dict[str, dict[str, int]] = {}
    for r in conn.execute(
        sql.fleet_status_counts(now, liveness.multiple, liveness.default_interval_s)
    ):
        statuses.setdefault(r.fleet_id, {})[r.status] = int(r.n)
    versions: dict[str, dict[str, int]] = {}
    for r in conn.execute(sql.fleet_versions()):
        versions.setdefault(r.fleet_id, {})[r.version] = int(r.n)
    out = []
    for fid in sorted(set(names) | set(statuses)):
        meta = names.get(fid)
        by_status = statuses.get(fid, {})
        out.append(
            Fleet(
                fid,
                meta.name if meta is not None else fid,
                meta.last_seen_at if meta is not None else None,
                sum(by_status.values()),
                by_status,
                versions.get(fid, {}),
            )
        )
    return tuple(out)


def agent_status_counts(
    conn: Connection, *, now: datetime, liveness: Liveness = DEFAULT_LIVENESS
) -> dict[str, int]:
    """Agents per effective status (``online``, ``degraded``, ``offline``; all present)."""
    counts = {"online": 0, "degraded": 0, "offline": 0}
    for r in conn.execute(sql.status_counts(now, liveness.multiple, liveness.default_interval_s)):
        counts[r.status] = int(r.n)
    return counts

"""MOSAIC, DAMN and UCE views of the current org, from their rollup families.

- MOSAIC: routing decisions per route and outcome (``mosaic_routes``), the handoff graph
  (edges from ``mosaic_handoffs``, nodes the agents on them with their span volume from
  ``span_red``) and the orchestration timeline (decisions and handoffs per step).
- DAMN: the fleet health grid (agents by fleet with their effective status), heartbeat
  uptime per agent per step (minutes with a non-offline heartbeat / minutes in the step,
  from ``damn_heartbeats``; capped at 1 where an agent reported two statuses in one
  minute), the version distribution and the queue depth series
  (``metric_rollup`` of ``damn.queue.depth``: mean and max of the points).
- UCE: operations per minute by operation per step, context size p50/p95 and the cache
  hit ratio per operation (``uce_ops``), and the top contexts by churn (writes and
  evictions; from raw spans, so over the last day of the range only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from storage.read._common import (
    Availability,
    SeriesPlan,
    check_span,
    ratio,
    segments,
    series_plan,
)
from storage.read._sql import agents as agent_sql
from storage.read._sql import subsystems as sql
from storage.read._sql.rollups import Filter, highest, quantile, rollup_select, total
from storage.read.agents import DEFAULT_LIVENESS, Liveness

MAX_RANGE = timedelta(days=400)
MAX_CHURN_RANGE = timedelta(days=1)
QUEUE_DEPTH_METRIC = "damn.queue.depth"


@dataclass(frozen=True, slots=True)
class Route:
    """Routing decisions of one route and outcome."""

    route: str
    outcome: str
    decisions: int
    successes: int
    failures: int
    success_rate: float | None


@dataclass(frozen=True, slots=True)
class GraphNode:
    """An agent on the handoff graph with its span volume."""

    agent_id: str
    spans: int


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """Handoffs from one agent to another."""

    from_agent: str
    to_agent: str
    handoffs: int
    failures: int


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """Orchestration in one step."""

    t: datetime
    decisions: int
    decision_failures: int
    handoffs: int


@dataclass(frozen=True, slots=True)
class MosaicView:
    """The MOSAIC view."""

    routes: tuple[Route, ...]
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    timeline: tuple[TimelinePoint, ...]
    plan: SeriesPlan


def mosaic_view(
    conn: Connection, *, start: datetime, end: datetime, step: timedelta, available: Availability
) -> MosaicView:
    """Routes, the handoff graph and the orchestration timeline over the range."""
    check_span(start, end, MAX_RANGE, "mosaic")
    parts = segments(start, end, available)
    route_aggs = [total("decisions"), total("successes"), total("failures")]
    routes = tuple(
        Route(
            r.route,
            r.outcome,
            int(r.decisions),
            int(r.successes),
            int(r.failures),
            ratio(r.successes, r.decisions),
        )
        for r in conn.execute(
            rollup_select(
                "mosaic_routes",
                parts,
                route_aggs,
                dims=["route", "outcome"],
                order_by=["route", "outcome"],
            )
        )
    )
    edges = tuple(
        GraphEdge(r.from_agent, r.to_agent, int(r.handoffs), int(r.failures))
        for r in conn.execute(
            rollup_select(
                "mosaic_handoffs",
                parts,
                [total("handoffs"), total("failures")],
                dims=["from_agent", "to_agent"],
                order_by=["from_agent", "to_agent"],
            )
        )
    )
    on_graph = sorted({e.from_agent for e in edges} | {e.to_agent for e in edges})
    volume = {}
    if on_graph:
        volume = {
            r.agent_id: int(r.span_count)
            for r in conn.execute(
                rollup_select(
                    "span_red",
                    parts,
                    [total("span_count")],
                    dims=["agent_id"],
                    filters=[Filter("agent_id", "in", tuple(on_graph))],
                )
            )
        }
    nodes = tuple(GraphNode(a, volume.get(a, 0)) for a in on_graph)
    plan = series_plan(start, end, step, available)
    return MosaicView(routes, nodes, edges, _timeline(conn, plan), plan)


def _timeline(conn: Connection, plan: SeriesPlan) -> tuple[TimelinePoint, ...]:
    seg = [plan.segment()]
    decisions = {
        r.ts: r
        for r in conn.execute(
            rollup_select(
                "mosaic_routes", seg, [total("decisions"), total("failures")], step=plan.step
            )
        )
    }
    handoffs = {
        r.ts: int(r.handoffs)
        for r in conn.execute(
            rollup_select("mosaic_handoffs", seg, [total("handoffs")], step=plan.step)
        )
    }
    return tuple(
        TimelinePoint(
            t,
            int(decisions[t].decisions) if t in decisions else 0,
            int(decisions[t].failures) if t in decisions else 0,
            handoffs.get(t, 0),
        )
        for t in sorted(set(decisions) | set(handoffs))
    )


@dataclass(frozen=True, slots=True)
class GridCell:
    """One agent of the fleet health grid."""

    fleet_id: str
    agent_id: str
    status: str
    version: str | None
    last_heartbeat_at: datetime | None


@dataclass(frozen=True, slots=True)
class UptimePoint:
    """Heartbeat uptime of one agent in one step."""

    t: datetime
    agent_id: str
    heartbeats: int
    uptime: float


@dataclass(frozen=True, slots=True)
class QueuePoint:
    """Queue depth in one step."""

    t: datetime
    mean: float | None
    max: float | None
    points: int


@dataclass(frozen=True, slots=True)
class DamnView:
    """The DAMN view."""

    grid: tuple[GridCell, ...]
    by_status: dict[str, int]
    uptime: tuple[UptimePoint, ...]
    versions: dict[str, int]
    queue_depth: tuple[QueuePoint, ...]
    plan: SeriesPlan


def damn_view(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    now: datetime,
    available: Availability,
    liveness: Liveness = DEFAULT_LIVENESS,
) -> DamnView:
    """Fleet health grid, uptime per agent, version distribution and queue depth."""
    check_span(start, end, MAX_RANGE, "damn")
    rows = conn.execute(
        agent_sql.agent_rows(now, liveness.multiple, liveness.default_interval_s)
    ).all()
    grid = tuple(
        sorted(
            (
                GridCell(r.fleet_id or "", r.agent_id, r.status, r.version, r.last_heartbeat_at)
                for r in rows
            ),
            key=lambda c: (c.fleet_id, c.agent_id),
        )
    )
    by_status = {"online": 0, "degraded": 0, "offline": 0}
    versions: dict[str, int] = {}
    for c in grid:
        by_status[c.status] = by_status.get(c.status, 0) + 1
        versions[c.version or ""] = versions.get(c.version or "", 0) + 1
    plan = series_plan(start, end, step, available)
    return DamnView(grid, by_status, _uptime(conn, plan), versions, _queue(conn, plan), plan)


def _uptime(conn: Connection, plan: SeriesPlan) -> tuple[UptimePoint, ...]:
    minutes = plan.step.total_seconds() / 60
    rows = conn.execute(
        rollup_select(
            "damn_heartbeats",
            [plan.segment()],
            [total("heartbeats"), total("active_minutes")],
            dims=["agent_id"],
            filters=[Filter("status", "not_in", ("offline",))],
            step=plan.step,
            order_by=["ts", "agent_id"],
        )
    )
    return tuple(
        UptimePoint(r.ts, r.agent_id, int(r.heartbeats), min(int(r.active_minutes) / minutes, 1.0))
        for r in rows
    )


def _queue(conn: Connection, plan: SeriesPlan) -> tuple[QueuePoint, ...]:
    rows = conn.execute(
        rollup_select(
            "metric_rollup",
            [plan.segment()],
            [total("sum", "value_sum"), total("count", "points"), highest("max", "value_max")],
            filters=[Filter("metric", "eq", (QUEUE_DEPTH_METRIC,))],
            step=plan.step,
        )
    )
    return tuple(
        QueuePoint(r.ts, ratio(r.value_sum, r.points), r.value_max, int(r.points)) for r in rows
    )


@dataclass(frozen=True, slots=True)
class UceOperation:
    """One UCE operation over the range."""

    operation: str
    ops: int
    errors: int
    cache_hit_ratio: float | None
    context_size_p50: float | None
    context_size_p95: float | None


@dataclass(frozen=True, slots=True)
class OpsPoint:
    """Operations per minute of one operation in one step."""

    t: datetime
    operation: str
    ops: int
    per_minute: float


@dataclass(frozen=True, slots=True)
class ContextChurn:
    """A context ranked by churn."""

    context_id: str
    ops: int
    churn: int
    agents: int
    last_op_at: datetime


@dataclass(frozen=True, slots=True)
class UceView:
    """The UCE view."""

    operations: tuple[UceOperation, ...]
    overall: UceOperation
    ops_per_minute: tuple[OpsPoint, ...]
    top_contexts: tuple[ContextChurn, ...]
    plan: SeriesPlan


def _uce_aggs() -> list[Any]:
    return [
        total("op_count"),
        total("error_count"),
        total("cache_hits"),
        total("cache_lookups"),
        quantile("context_size_hist", 0.5, "p50"),
        quantile("context_size_hist", 0.95, "p95"),
    ]


def _uce_op(name: str, r: Any) -> UceOperation:
    return UceOperation(
        name,
        int(r.op_count),
        int(r.error_count),
        ratio(r.cache_hits, r.cache_lookups),
        r.p50,
        r.p95,
    )


def uce_view(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    available: Availability,
    top: int = 10,
) -> UceView:
    """Operations per minute, context sizes, cache hit ratio and the top contexts."""
    check_span(start, end, MAX_RANGE, "uce")
    parts = segments(start, end, available)
    ops = tuple(
        _uce_op(r.operation, r)
        for r in conn.execute(
            rollup_select("uce_ops", parts, _uce_aggs(), dims=["operation"], order_by=["operation"])
        )
    )
    overall = _uce_op("", conn.execute(rollup_select("uce_ops", parts, _uce_aggs())).one())
    plan = series_plan(start, end, step, available)
    minutes = plan.step.total_seconds() / 60
    series = tuple(
        OpsPoint(r.ts, r.operation, int(r.op_count), int(r.op_count) / minutes)
        for r in conn.execute(
            rollup_select(
                "uce_ops",
                [plan.segment()],
                [total("op_count")],
                dims=["operation"],
                step=plan.step,
                order_by=["ts", "operation"],
            )
        )
    )
    churn_start = max(start, end - MAX_CHURN_RANGE)
    contexts = tuple(
        ContextChurn(r.context_id, int(r.ops), int(r.churn), int(r.agents), r.last_op_at)
        for r in conn.execute(sql.context_churn(churn_start, end, top))
    )
    return UceView(ops, overall, series, contexts, plan)

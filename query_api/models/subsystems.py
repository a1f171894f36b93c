"""MOSAIC, DAMN and UCE views."""

from __future__ import annotations

from datetime import datetime

from query_api.models._base import ViewModel


class RouteOut(ViewModel):
    """Routing decisions of one route and outcome."""

    route: str
    outcome: str
    decisions: int
    successes: int
    failures: int
    success_rate: float | None


class NodeOut(ViewModel):
    """An agent on the handoff graph."""

    agent_id: str
    spans: int


class EdgeOut(ViewModel):
    """Handoffs between two agents."""

    from_agent: str
    to_agent: str
    handoffs: int
    failures: int


class TimelineOut(ViewModel):
    """Orchestration in one step."""

    t: datetime
    decisions: int
    decision_failures: int
    handoffs: int


class MosaicOut(ViewModel):
    """MOSAIC: routes, the handoff graph, the orchestration timeline."""

    routes: list[RouteOut]
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    timeline: list[TimelineOut]
    level: str
    step_seconds: int


class GridCellOut(ViewModel):
    """An agent in the fleet health grid."""

    fleet_id: str
    agent_id: str
    status: str
    version: str | None
    last_heartbeat_at: datetime | None


class UptimeOut(ViewModel):
    """Heartbeat uptime (0..1) of an agent in a step."""

    t: datetime
    agent_id: str
    heartbeats: int
    uptime: float


class QueueOut(ViewModel):
    """Queue depth in a step."""

    t: datetime
    mean: float | None
    max: float | None
    points: int


class DamnOut(ViewModel):
    """DAMN: fleet health grid, uptime, versions, queue depth."""

    grid: list[GridCellOut]
    by_status: dict[str, int]
    uptime: list[UptimeOut]
    versions: dict[str, int]
    queue_depth: list[QueueOut]
    level: str
    step_seconds: int


class UceOperationOut(ViewModel):
    """A UCE operation over the range ('' = all operations)."""

    operation: str
    ops: int
    errors: int
    cache_hit_ratio: float | None
    context_size_p50: float | None
    context_size_p95: float | None


class OpsPointOut(ViewModel):
    """Operations per minute of one operation in a step."""

    t: datetime
    operation: str
    ops: int
    per_minute: float


class ContextOut(ViewModel):
    """A context ranked by churn (writes and evictions) over the last day of the range."""

    context_id: str
    ops: int
    churn: int
    agents: int
    last_op_at: datetime


class UceOut(ViewModel):
    """UCE: operations, context sizes, cache hit ratio, top contexts."""

    operations: list[UceOperationOut]
    overall: UceOperationOut
    ops_per_minute: list[OpsPointOut]
    top_contexts: list[ContextOut]
    level: str
    step_seconds: int

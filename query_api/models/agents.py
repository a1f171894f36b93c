"""Agents and fleets."""

from __future__ import annotations

from datetime import datetime

from query_api.models._base import RedOut, ViewModel


class AgentOut(ViewModel):
    """An agent: status accounts for heartbeat age; RED over the requested range."""

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
    red: RedOut


class AgentRowOut(ViewModel):
    """An agent as one flat row (list and CSV)."""

    agent_id: str
    fleet_id: str | None
    name: str
    subsystem: str
    version: str | None
    status: str
    reported_status: str
    last_heartbeat_at: datetime | None
    heartbeat_interval_s: float | None
    utilization: float | None
    requests: int
    errors: int
    error_rate: float | None
    p95_ms: float | None


class SeriesPointOut(ViewModel):
    """One step of an agent's series."""

    t: datetime
    red: RedOut


class AgentDetailOut(ViewModel):
    """An agent with its series (``level`` is the rollup level read)."""

    agent: AgentOut
    series: list[SeriesPointOut]
    level: str
    step_seconds: int


class FleetOut(ViewModel):
    """A fleet: agents by status and by version (version skew)."""

    fleet_id: str
    name: str
    last_seen_at: datetime | None
    agents: int
    by_status: dict[str, int]
    by_version: dict[str, int]

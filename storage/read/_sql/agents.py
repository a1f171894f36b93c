"""Named statements of the agents, fleets and DAMN readers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    update,
)

from storage.schema import agents, events, fleets

#: A select of any columns.
Rows = Select[*tuple[Any, ...]]
HEARTBEAT_EVENT = "damn.agent.heartbeat"
INTERVAL_ATTRIBUTE = "damn.heartbeat.interval"


def heartbeat_interval() -> ColumnElement[Any]:
    """Seconds between heartbeats the agent announced with its newest heartbeat, or NULL.

    The newest heartbeat event is found by the agent's ``last_heartbeat_at`` (an index
    probe on ``ix_events_org_agent_time``), within a millisecond for rounding.
    """
    e = events
    value = e.c.payload[INTERVAL_ATTRIBUTE]
    ms = timedelta(milliseconds=1)
    return (
        select(cast(value.astext, Double))
        .where(
            e.c.org_id == agents.c.org_id,
            e.c.agent_id == agents.c.agent_id,
            e.c.time >= agents.c.last_heartbeat_at - ms,
            e.c.time <= agents.c.last_heartbeat_at + ms,
            e.c.event_type == HEARTBEAT_EVENT,
            func.jsonb_typeof(value) == "number",
            cast(value.astext, Double) > 0,
        )
        .order_by(e.c.time.desc())
        .limit(1)
        .scalar_subquery()
    )


def silent_since() -> ColumnElement[Any]:
    """The last sign of life: the newest heartbeat, or the newest sighting without one."""
    return func.coalesce(agents.c.last_heartbeat_at, agents.c.last_seen_at)


def offline_deadline(
    now: datetime, multiple: float, default_interval_s: float
) -> ColumnElement[Any]:
    """The time before which an agent's last sign of life makes it offline."""
    seconds = func.coalesce(heartbeat_interval(), literal(default_interval_s)) * literal(multiple)
    return literal(now) - func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def effective_status(
    now: datetime, multiple: float, default_interval_s: float
) -> ColumnElement[str]:
    """``offline`` when silent past the deadline, else the status last reported."""
    return case(
        (
            and_(
                silent_since().is_not(None),
                silent_since() < offline_deadline(now, multiple, default_interval_s),
            ),
            literal("offline"),
        ),
        else_=agents.c.status,
    )


def agent_rows(now: datetime, multiple: float, default_interval_s: float) -> Select[Any]:
    """Agents with their effective status (``status``) and the reported one."""
    return select(
        agents.c.agent_id,
        agents.c.fleet_id,
        agents.c.name,
        agents.c.subsystem,
        agents.c.version,
        agents.c.service_name,
        agents.c.status.label("reported_status"),
        effective_status(now, multiple, default_interval_s).label("status"),
        agents.c.last_heartbeat_at,
        agents.c.last_seen_at,
        heartbeat_interval().label("heartbeat_interval_s"),
    )


def status_counts(now: datetime, multiple: float, default_interval_s: float) -> Rows:
    """Agents per effective status."""
    status = effective_status(now, multiple, default_interval_s).label("status")
    return select(status, func.count().label("n")).group_by(status)


def fleet_status_counts(now: datetime, multiple: float, default_interval_s: float) -> Rows:
    """Agents per fleet and effective status."""
    status = effective_status(now, multiple, default_interval_s).label("status")
    fleet = func.coalesce(agents.c.fleet_id, "").label("fleet_id")
    return select(fleet, status, func.count().label("n")).group_by(fleet, status)


def fleet_versions() -> Rows:
    """Agents per fleet and version (version skew)."""
    fleet = func.coalesce(agents.c.fleet_id, "").label("fleet_id")
    version = func.coalesce(agents.c.version, "").label("version")
    return (
        select(fleet, version, func.count().label("n"))
        .group_by(fleet, version)
        .order_by(fleet, version)
    )


def fleet_rows() -> Select[Any]:
    """Fleets (a fleet that only agents name still shows: see the reader)."""
    return select(fleets.c.fleet_id, fleets.c.name, fleets.c.last_seen_at).order_by(
        fleets.c.fleet_id
    )


def mark_offline(now: datetime, multiple: float, default_interval_s: float) -> Any:
    """Writes ``offline`` back to every agent silent past its deadline (all orgs)."""
    return (
        update(agents)
        .where(
            agents.c.status != "offline",
            silent_since().is_not(None),
            silent_since() < offline_deadline(now, multiple, default_interval_s),
        )
        .values(status="offline")
        .returning(agents.c.org_id, agents.c.agent_id)
    )

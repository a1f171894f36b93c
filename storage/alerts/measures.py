"""Readers of alert measures on the rollups; they take an already scoped connection.

An org's rules are read by a connection scoped to that org's tenant (row-level security
and the tenant views decide what it sees; the ``org_id`` filter is only for the index);
platform rules by a support-scoped one over ``platform_red_*``. Nothing here reads raw
telemetry, so a cycle's cost does not grow with span volume.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from storage.alerts import _sql
from storage.alerts.spec import BudgetParams, HeartbeatParams, _MeasureParams


@dataclass(frozen=True, slots=True)
class Point:
    """One group's value (``None``: undefined, e.g. a rate over no spans)."""

    labels: dict[str, str]
    value: float | None
    spans: int = 0


def _span_value(measure: str, row: Mapping[Any, Any]) -> float | None:
    spans = int(row["span_count"] or 0)
    if measure == "span_count":
        return float(spans)
    if measure == "error_count":
        return float(row["error_count"] or 0)
    if spans == 0:
        return None
    if measure == "error_rate":
        return float(row["error_count"] or 0) / spans
    if measure == "duration_avg_ms":
        return float(row["duration_sum_ms"] or 0) / spans
    if measure == "duration_max_ms":
        return None if row["duration_max_ms"] is None else float(row["duration_max_ms"])
    value = row["quantile"]
    return None if value is None else float(value)


def _metric_value(measure: str, row: Mapping[Any, Any]) -> float | None:
    if measure == "metric_avg":
        count = row["metric_count"] or 0
        return None if not count or row["metric_sum"] is None else row["metric_sum"] / count
    value = row[measure]
    return None if value is None else float(value)


def _span_relation(params: _MeasureParams, platform: bool, level: str) -> str:
    if platform:
        return f"platform_red_{level}"
    return f"span_red_{level}" if params.group_by or params.filters else f"org_red_{level}"


def measure_points(
    conn: Connection,
    params: _MeasureParams,
    org_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> list[Point]:
    """The measure per group over [start, end) of 1 min buckets (``org_id`` None: platform)."""
    measure = params.base_measure
    if params.is_metric:
        return _metric_points(conn, params, org_id, start, end)
    dims = list(params.group_by)
    relation = _span_relation(params, org_id is None, "1m")
    stmt = _sql.span_aggregate(relation, dims, list(params.filters), org_id is not None, measure)
    binds: dict[str, Any] = {"start": start, "end": end, "org_id": org_id}
    binds.update({f"f_{k}": v for k, v in params.filters.items()})
    points = []
    for row in conn.execute(stmt, binds).mappings():
        if not dims and not row["span_count"]:
            continue  # no group-by and no spans: no data (not a group with zero)
        labels = {d: str(row[d]) for d in dims}
        points.append(Point(labels, _span_value(measure, row), int(row["span_count"] or 0)))
    return points


def _metric_points(
    conn: Connection,
    params: _MeasureParams,
    org_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> list[Point]:
    dims, filters = list(params.group_by), list(params.filters)
    binds: dict[str, Any] = {"start": start, "end": end, "org_id": org_id, "metric": params.metric}
    binds.update({f"g{i}": d.removeprefix("dimension:") for i, d in enumerate(dims)})
    binds.update({f"f{i}": d.removeprefix("dimension:") for i, d in enumerate(filters)})
    binds.update({f"fv{i}": params.filters[d] for i, d in enumerate(filters)})
    points = []
    for row in conn.execute(_sql.metric_aggregate(dims, filters), binds).mappings():
        if not row["metric_count"] and row["metric_last"] is None:
            continue
        labels = {d.removeprefix("dimension:"): str(row[f"d{i}"]) for i, d in enumerate(dims)}
        points.append(Point(labels, _metric_value(params.base_measure, row)))
    return points


def measure_series(
    conn: Connection,
    params: _MeasureParams,
    org_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
    step: str,
) -> dict[datetime, float | None]:
    """The measure per ``step`` (``minute`` or ``hour``) bucket over [start, end)."""
    level = "1m" if step == "minute" else "1h"
    binds: dict[str, Any] = {"start": start, "end": end, "org_id": org_id}
    rows: Sequence[Row[Any]]
    if params.is_metric:
        binds["metric"] = params.metric
        rows = conn.execute(_sql.metric_series(step), binds).all()
        return {r._mapping["b"]: _metric_value(params.base_measure, r._mapping) for r in rows}
    relation = _span_relation(params, org_id is None, level)
    stmt = _sql.span_series(relation, org_id is not None, step, params.base_measure)
    rows = conn.execute(stmt, binds).all()
    return {r._mapping["b"]: _span_value(params.base_measure, r._mapping) for r in rows}


def spend(
    conn: Connection, params: BudgetParams, org_id: uuid.UUID, start: datetime, end: datetime
) -> list[Point]:
    """Spend (USD) per group over the UTC days [start, end) of ``cost_daily``."""
    dims = list(params.group_by)
    binds: dict[str, Any] = {"start": start, "end": end, "org_id": org_id}
    binds.update({f"f_{k}": v for k, v in params.filters.items()})
    rows = conn.execute(_sql.cost_by_group(dims, list(params.filters)), binds).mappings()
    return [Point({d: str(r[d]) for d in dims}, float(r["spend"])) for r in rows]


@dataclass(frozen=True, slots=True)
class AgentActivity:
    """When an agent was last active (heartbeat or span), and its last reported status."""

    agent_id: str
    fleet_id: str
    last_seen: datetime | None
    status: str | None


#: Activity is looked for over ``LOOKBACK_FACTOR`` x the silence threshold: enough to tell
#: silent from active (older activity reads as "silent for at least the look-back"), and
#: it keeps the scan of the 1 min rollups short.
LOOKBACK_FACTOR = 2
MIN_LOOKBACK = timedelta(minutes=10)


def lookback(silent_for: timedelta) -> timedelta:
    """How far back a heartbeat rule looks for activity."""
    return max(MIN_LOOKBACK, LOOKBACK_FACTOR * silent_for)


def agent_activity(
    conn: Connection, params: HeartbeatParams, org_id: uuid.UUID, now: datetime
) -> list[AgentActivity]:
    """Known agents (of the rule's agent or fleet, if any) and their last activity."""
    binds = {
        "org_id": org_id,
        "since": now - lookback(timedelta(seconds=params.silent_for_s)),
        "end": now,
        "agent": params.agent_id,
        "fleet": params.fleet_id,
    }
    return [
        AgentActivity(r.agent_id, r.fleet_id, r.last_seen, r.status)
        for r in conn.execute(_sql.AGENT_ACTIVITY, binds)
    ]


def metric_last_seen(
    conn: Connection, metric: str, org_id: uuid.UUID, now: datetime, silent_for: timedelta
) -> datetime | None:
    """The end of the last minute with a data point of ``metric`` (None: not lately)."""
    since = now - lookback(silent_for)
    binds = {"org_id": org_id, "metric": metric, "since": since, "end": now}
    value: datetime | None = conn.execute(_sql.METRIC_LAST_SEEN, binds).scalar()
    return value

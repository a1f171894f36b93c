"""Named statements of the staff views (support role: every org, read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, TextClause, case, func, select, text

from storage.schema import cost_daily, cost_line_items, orgs, platform_health, scheduler_runs


def org_rows() -> Select[Any]:
    """Every org."""
    return select(orgs.c.id, orgs.c.name, orgs.c.plan).order_by(orgs.c.name)


def cost_by_org(kind: str, lo: datetime, hi: datetime) -> Select[Any]:
    """Cost per org over whole days (``cost_daily``) or part of a day (line items)."""
    if kind == "daily":
        d = cost_daily
        return (
            select(d.c.org_id, func.sum(d.c.cost_usd).label("cost_usd"))
            .where(d.c.bucket >= lo, d.c.bucket < hi)
            .group_by(d.c.org_id)
        )
    c = cost_line_items
    return (
        select(c.c.org_id, func.sum(c.c.cost_usd).label("cost_usd"))
        .where(c.c.time >= lo, c.c.time < hi)
        .group_by(c.c.org_id)
    )


def receiver_health(start: datetime, end: datetime) -> Select[Any]:
    """Receiver processes per signal: counts and commit latency over ``[start, end)``."""
    p = platform_health
    return (
        select(
            p.c.instance,
            p.c.signal,
            func.sum(p.c.accepted).label("accepted"),
            func.sum(p.c.rejected).label("rejected"),
            func.sum(p.c.refused).label("refused"),
            func.sum(p.c.requests).label("requests"),
            func.sum(p.c.commits).label("commits"),
            func.sum(p.c.commit_seconds_sum).label("commit_seconds_sum"),
            func.max(p.c.commit_seconds_max).label("commit_seconds_max"),
            func.max(p.c.time).label("last_report"),
        )
        .where(p.c.time >= start, p.c.time < end)
        .group_by(p.c.instance, p.c.signal)
        .order_by(p.c.instance, p.c.signal)
    )


def scheduler_health(start: datetime, end: datetime) -> Select[Any]:
    """Runs and failures per job over ``[start, end)``, with the latest run."""
    r = scheduler_runs
    return (
        select(
            r.c.job,
            func.count().label("runs"),
            func.count().filter(r.c.status == "failed").label("failures"),
            func.max(r.c.started_at).label("last_started_at"),
            func.max(case((r.c.status == "failed", r.c.started_at))).label("last_failure_at"),
        )
        .where(r.c.started_at >= start, r.c.started_at < end)
        .group_by(r.c.job)
        .order_by(r.c.job)
    )


def relation_sizes(timescale: bool) -> TextClause:
    """Bytes on disk of each named relation (``:names``): partitions, chunks included."""
    if timescale:
        return text(
            "SELECT n AS name, CASE"
            " WHEN h.hypertable_name IS NOT NULL THEN hypertable_size(format('%I', n)::regclass)"
            " WHEN a.view_name IS NOT NULL THEN hypertable_size(format('%I.%I',"
            "   a.materialization_hypertable_schema, a.materialization_hypertable_name)::regclass)"
            " ELSE pg_total_relation_size(format('%I', n)::regclass) END AS bytes"
            " FROM unnest(CAST(:names AS text[])) AS n"
            " LEFT JOIN timescaledb_information.hypertables h"
            "   ON h.hypertable_schema = 'public' AND h.hypertable_name = n"
            " LEFT JOIN timescaledb_information.continuous_aggregates a"
            "   ON a.view_schema = 'public' AND a.view_name = n"
            " ORDER BY bytes DESC NULLS LAST"
        )
    return text(
        "SELECT n AS name, (SELECT sum(pg_total_relation_size(t.relid))"
        "   FROM pg_partition_tree(format('%I', n)::regclass) t) AS bytes"
        " FROM unnest(CAST(:names AS text[])) AS n ORDER BY bytes DESC NULLS LAST"
    )


def storage_engine() -> TextClause:
    """The storage engine chosen at migration time."""
    return text("SELECT value FROM aeos_meta WHERE key = 'storage_engine'")

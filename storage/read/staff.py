"""Staff views across every org (support role): global overview, org explorer, fleet
explorer and platform health. Telemetry numbers come from the rollups (``platform_red``
for the platform, ``org_red`` / ``span_red`` per org), costs from ``cost_daily`` plus
the line items of partial days, so they are exact.

Health score of an org (0-100), the sum of three documented parts:

- errors, 40 points: ``40 * (1 - min(error_rate / 5 %, 1))`` (0 at 5 % errors or more);
- latency, 30 points: full at a p95 of 2 s or less, 0 at 30 s or more, linear between;
- agents, 30 points: ``30 * (1 - offline / agents)`` (full with no agents).
An org with no traffic in the range gets the full error and latency parts.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from storage.read._common import Availability, Coverage, check_span, coverage, segments
from storage.read._sql import agents as agent_sql
from storage.read._sql import staff as sql
from storage.read._sql.rollups import red_aggs, rollup_select
from storage.read.agents import DEFAULT_LIVENESS, Liveness, Red, red_of
from storage.read.costs import CostTotals, cost_report, pieces
from storage.schema import ROLLUP_TABLES, agents, metadata

MAX_STAFF_RANGE = timedelta(days=400)
#: Wilson interval z for the fleet explorer's ranking (95 %).
WILSON_Z = 1.96


@dataclass(frozen=True, slots=True)
class GlobalOverview:
    """The platform over a range."""

    orgs: int
    agents: dict[str, int]
    red: Red
    cost: CostTotals
    coverage: Coverage


def _agent_counts(
    conn: Connection, now: datetime, liveness: Liveness
) -> tuple[dict[str, int], dict[uuid.UUID, tuple[int, int]]]:
    """Agents per effective status, and per org (agents, offline)."""
    status = agent_sql.effective_status(now, liveness.multiple, liveness.default_interval_s)
    rows = conn.execute(
        select(agents.c.org_id, status.label("status"), func.count().label("n")).group_by(
            agents.c.org_id, status
        )
    ).all()
    totals = {"online": 0, "degraded": 0, "offline": 0}
    per_org: dict[uuid.UUID, tuple[int, int]] = {}
    for r in rows:
        totals[r.status] = totals.get(r.status, 0) + int(r.n)
        n, off = per_org.get(r.org_id, (0, 0))
        per_org[r.org_id] = (n + int(r.n), off + (int(r.n) if r.status == "offline" else 0))
    return totals, per_org


def global_overview(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    liveness: Liveness = DEFAULT_LIVENESS,
) -> GlobalOverview:
    """Orgs, agents, requests, error rate, latency and cost of all orgs together."""
    check_span(start, end, MAX_STAFF_RANGE, "global overview")
    parts = segments(start, end, Availability.unlimited())
    red = red_of(conn.execute(rollup_select("platform_red", parts, red_aggs())).first())
    org_count = conn.execute(
        select(func.count()).select_from(sql.org_rows().subquery())
    ).scalar_one()
    totals, _ = _agent_counts(conn, now, liveness)
    cost = cost_report(conn, start=start, end=end).totals
    return GlobalOverview(int(org_count), totals, red, cost, coverage(parts))


@dataclass(frozen=True, slots=True)
class HealthScore:
    """An org's health (0-100) and its parts (see the module docstring)."""

    score: int
    errors: float
    latency: float
    agents: float


@dataclass(frozen=True, slots=True)
class OrgRow:
    """One org in the org explorer."""

    org_id: uuid.UUID
    name: str
    plan: str
    red: Red
    cost_mtd_usd: Decimal
    agents: int
    agents_offline: int
    health: HealthScore


def health_score(red: Red, agents_total: int, offline: int) -> HealthScore:
    """The documented health score of an org."""
    rate = red.error_rate or 0.0
    errors = 40 * (1 - min(rate / 0.05, 1.0))
    p95 = red.p95_ms
    latency = 30.0 if p95 is None else 30 * (1 - min(max(p95 - 2000, 0) / 28000, 1.0))
    agent_part = 30.0 if agents_total == 0 else 30 * (1 - offline / agents_total)
    return HealthScore(round(errors + latency + agent_part), errors, latency, agent_part)


ORG_SORTS = (
    "name",
    "plan",
    "requests",
    "error_rate",
    "p95_ms",
    "cost_mtd_usd",
    "agents_offline",
    "health",
)


def _sort_value(row: OrgRow, key: str) -> Any:
    values: dict[str, Any] = {
        "name": row.name,
        "plan": row.plan,
        "requests": row.red.requests,
        "error_rate": row.red.error_rate or 0.0,
        "p95_ms": row.red.p95_ms or 0.0,
        "cost_mtd_usd": row.cost_mtd_usd,
        "agents_offline": row.agents_offline,
        "health": row.health.score,
    }
    return values[key]


def org_explorer(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    liveness: Liveness = DEFAULT_LIVENESS,
    plan: str | None = None,
    name_contains: str | None = None,
    sort: str = "name",
    descending: bool = False,
) -> tuple[OrgRow, ...]:
    """Every org (filtered by plan and name) with volume, errors, p95 over the range, cost
    month to date, offline agents and health score, sorted by ``sort``."""
    check_span(start, end, MAX_STAFF_RANGE, "org explorer")
    parts = segments(start, end, Availability.unlimited())
    reds = {
        r.org_id: r
        for r in conn.execute(rollup_select("org_red", parts, red_aggs(), dims=["org_id"]))
    }
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    costs: dict[uuid.UUID, Decimal] = {}
    for kind, lo, hi in pieces(first, now) if now > first else []:
        for r in conn.execute(sql.cost_by_org(kind, lo, hi)):
            costs[r.org_id] = costs.get(r.org_id, Decimal(0)) + Decimal(r.cost_usd)
    _, per_org = _agent_counts(conn, now, liveness)
    out = []
    for o in conn.execute(sql.org_rows()):
        if plan is not None and o.plan != plan:
            continue
        if name_contains and name_contains.lower() not in o.name.lower():
            continue
        red = red_of(reds.get(o.id))
        n, off = per_org.get(o.id, (0, 0))
        out.append(
            OrgRow(
                o.id,
                o.name,
                o.plan,
                red,
                costs.get(o.id, Decimal(0)),
                n,
                off,
                health_score(red, n, off),
            )
        )
    out.sort(key=lambda r: (_sort_value(r, sort), r.name), reverse=descending)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FailingAgent:
    """An agent of some org, ranked by the lower Wilson bound of its error rate."""

    org_id: uuid.UUID
    org_name: str
    agent_id: str
    requests: int
    errors: int
    error_rate: float
    score: float


def wilson_lower(errors: int, n: int, z: float = WILSON_Z) -> float:
    """Lower bound of the Wilson score interval of ``errors / n`` (0 for n = 0).

    It weights an error rate by volume: 2 errors in 2 requests rank below 200 in 1,000.
    """
    if n == 0:
        return 0.0
    p = errors / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max((centre - margin) / (1 + z * z / n), 0.0)


def fleet_explorer(
    conn: Connection, *, start: datetime, end: datetime, limit: int = 50
) -> tuple[FailingAgent, ...]:
    """The agents failing most across orgs over the range (error rate weighted by volume)."""
    check_span(start, end, timedelta(days=31), "fleet explorer")
    parts = segments(start, end, Availability.unlimited())
    rows = conn.execute(
        rollup_select("span_red", parts, red_aggs(()), dims=["org_id", "agent_id"])
    ).all()
    names = {o.id: o.name for o in conn.execute(sql.org_rows())}
    ranked = [
        FailingAgent(
            r.org_id,
            names.get(r.org_id, ""),
            r.agent_id,
            int(r.span_count),
            int(r.error_count),
            int(r.error_count) / int(r.span_count),
            wilson_lower(int(r.error_count), int(r.span_count)),
        )
        for r in rows
        if r.error_count and r.span_count
    ]
    ranked.sort(key=lambda a: (-a.score, -a.errors, a.agent_id))
    return tuple(ranked[:limit])


@dataclass(frozen=True, slots=True)
class ReceiverHealth:
    """One receiver process and signal over the range."""

    instance: str
    signal: str
    accepted: int
    rejected: int
    refused: int
    requests: int
    commits: int
    commit_seconds_avg: float | None
    commit_seconds_max: float | None
    last_report: datetime | None


@dataclass(frozen=True, slots=True)
class JobHealth:
    """Runs of one periodic job over the range."""

    job: str
    runs: int
    failures: int
    last_started_at: datetime | None
    last_failure_at: datetime | None


@dataclass(frozen=True, slots=True)
class PlatformHealth:
    """Receivers, scheduler and relation sizes."""

    receivers: tuple[ReceiverHealth, ...]
    jobs: tuple[JobHealth, ...]
    relation_sizes: dict[str, int]
    storage_engine: str


def platform_health(conn: Connection, *, start: datetime, end: datetime) -> PlatformHealth:
    """Receiver counts and commit latency, scheduler runs and failures, relation sizes."""
    check_span(start, end, timedelta(days=31), "platform health")
    receivers = tuple(
        ReceiverHealth(
            r.instance,
            r.signal,
            int(r.accepted),
            int(r.rejected),
            int(r.refused),
            int(r.requests),
            int(r.commits),
            r.commit_seconds_sum / r.commits if r.commits else None,
            r.commit_seconds_max,
            r.last_report,
        )
        for r in conn.execute(sql.receiver_health(start, end))
    )
    jobs = tuple(
        JobHealth(r.job, int(r.runs), int(r.failures), r.last_started_at, r.last_failure_at)
        for r in conn.execute(sql.scheduler_health(start, end))
    )
    engine = str(conn.execute(sql.storage_engine()).scalar_one())
    names = sorted(_relations())
    sizes = {
        r.name: int(r.bytes or 0)
        for r in conn.execute(sql.relation_sizes(engine == "timescale"), {"names": names})
    }
    return PlatformHealth(receivers, jobs, sizes, engine)


def _relations() -> Sequence[str]:
    return [t.name for t in metadata.sorted_tables if t.name not in ROLLUP_TABLES] + list(
        ROLLUP_TABLES
    )

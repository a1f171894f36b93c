"""The org overview, agents, fleets and costs readers against a recomputation from raw rows.

Counts are exact, percentiles within the histograms' 1 % of the exact nearest-rank value,
costs exact (numeric). Every reader runs as the tenant of one org through
``scoped_transaction``; the other org's rows must never count.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection

from storage.database import Database
from storage.read._common import Availability, floor_to
from storage.read.agents import Liveness, agent_detail, list_agents, list_fleets
from storage.read.costs import cost_report
from storage.read.overview import org_overview
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction
from tests.integration import _read_world as w

HOUR = timedelta(hours=1)


@pytest.fixture
def world(database: Database) -> w.World:
    return w.build(database)


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def close(estimate: float | None, exact: float) -> bool:
    return estimate is not None and abs(estimate - exact) <= 0.01 * exact + 1e-9


def spans_in(world: w.World, start: Any, end: Any, **where: Any) -> list[dict[str, Any]]:
    extra = "".join(f" AND {k} = :{k}" for k in where)
    return w.raw(
        world.db,
        "SELECT * FROM spans WHERE org_id = :org AND start_time >= :s AND start_time < :e" + extra,
        org=world.org,
        s=start,
        e=end,
        **where,
    )


def tenant(world: w.World) -> AbstractContextManager[Connection]:
    return scoped_transaction(world.db.app_engine(), Scope(DbRole.TENANT, world.org))


def check_red(red: Any, rows: list[dict[str, Any]]) -> None:
    assert red.requests == len(rows)
    assert red.errors == sum(r["status_code"] == 2 for r in rows)
    durations = [r["duration_ms"] for r in rows]
    for q, got in ((0.5, red.p50_ms), (0.95, red.p95_ms), (0.99, red.p99_ms)):
        assert close(got, exact_quantile(durations, q)), (q, got)


@pytest.mark.parametrize(
    ("start_h", "end_h"),
    [(-50, 0), (-24, 0), (-30, -2), (-3, -1)],
)
def test_overview_range_matches_raw_spans(world: w.World, start_h: int, end_h: int) -> None:
    # Minute-aligned ranges: the readers widen to whole minutes, the raw side must too.
    start = floor_to(w.NOW + start_h * HOUR - timedelta(minutes=7), 60)
    end = floor_to(w.NOW + end_h * HOUR, 60) if end_h else w.NOW
    with tenant(world) as conn:
        got = org_overview(
            conn, start=start, end=end, now=w.NOW, available=Availability.unlimited()
        )
    rows = spans_in(world, start, got.range.coverage.end)
    check_red(got.range.red, rows)
    items = w.raw(
        world.db,
        "SELECT * FROM cost_line_items WHERE org_id = :org AND time >= :s AND time < :e",
        org=world.org,
        s=start,
        e=end,
    )
    assert got.range.cost.cost_usd == sum((r["cost_usd"] for r in items), Decimal(0))
    assert got.range.cost.calls == len(items)
    assert got.range.cost.tokens_in == sum(r["tokens_in"] for r in items)
    runs = w.raw(
        world.db,
        "SELECT status, count(*) AS n FROM task_runs WHERE org_id = :org AND started_at >= :s "
        "AND started_at < :e GROUP BY status",
        org=world.org,
        s=start,
        e=end,
    )
    assert got.range.task_runs == {r["status"]: r["n"] for r in runs}
    assert got.alerts_firing == 0


def test_overview_today_and_month(world: w.World) -> None:
    with tenant(world) as conn:
        got = org_overview(
            conn,
            start=w.NOW - 24 * HOUR,
            end=w.NOW,
            now=w.NOW,
            available=Availability.unlimited(),
        )
    midnight = w.NOW.replace(hour=0, minute=0, second=0)
    check_red(got.today.red, spans_in(world, midnight, got.today.coverage.end))
    check_red(
        got.month_to_date.red, spans_in(world, midnight.replace(day=1), got.today.coverage.end)
    )
    assert got.today.coverage.levels == ("1m", "1h")
    assert got.month_to_date.coverage.levels == ("1m", "1h", "1d")


def test_agent_status_accounts_for_heartbeat_age(world: w.World) -> None:
    with tenant(world) as conn:
        page = list_agents(
            conn,
            start=w.NOW - 50 * HOUR,
            end=w.NOW,
            now=w.NOW,
            available=Availability.unlimited(),
            liveness=Liveness(3, 60),
        )
    status = {a.agent_id: a.status for a in page.agents}
    assert status == {
        "agent-1": "online",
        "agent-2": "offline",
        "agent-3": "degraded",
        "agent-4": "offline",
    }
    intervals = {a.agent_id: a.heartbeat_interval_s for a in page.agents}
    assert intervals == {"agent-1": 15.0, "agent-2": 60.0, "agent-3": None, "agent-4": 10.0}
    for agent in page.agents:
        check_red(agent.red, spans_in(world, w.NOW - 50 * HOUR, w.NOW, agent_id=agent.agent_id))
        points = w.raw(
            world.db,
            "SELECT value FROM metric_points WHERE org_id = :org AND agent_id = :a "
            "AND metric = 'damn.agent.utilization' AND time >= :s",
            org=world.org,
            a=agent.agent_id,
            s=w.NOW - 50 * HOUR,
        )
        assert agent.utilization == pytest.approx(sum(p["value"] for p in points) / len(points))


def test_agent_pages_and_filters(world: w.World) -> None:
    kw: dict[str, Any] = {
        "start": w.NOW - HOUR,
        "end": w.NOW,
        "now": w.NOW,
        "available": Availability.unlimited(),
    }
    with tenant(world) as conn:
        first = list_agents(conn, limit=3, **kw)
        assert [a.agent_id for a in first.agents] == ["agent-1", "agent-2", "agent-3"]
        rest = list_agents(conn, limit=3, after=first.next_after, **kw)
        assert [a.agent_id for a in rest.agents] == ["agent-4"]
        assert rest.next_after is None
        offline = list_agents(conn, status="offline", **kw)
        assert {a.agent_id for a in offline.agents} == {"agent-2", "agent-4"}
        fleet = list_agents(conn, fleet_id="fleet-a", **kw)
        assert {a.agent_id for a in fleet.agents} == {"agent-1", "agent-2"}


def test_agent_detail_series_sums_to_the_range(world: w.World) -> None:
    start, end = w.NOW - 48 * HOUR, w.NOW
    with tenant(world) as conn:
        got = agent_detail(
            conn,
            "agent-1",
            start=start,
            end=end,
            step=HOUR,
            now=w.NOW,
            available=Availability.unlimited(),
        )
        missing = agent_detail(
            conn,
            "nobody",
            start=start,
            end=end,
            step=HOUR,
            now=w.NOW,
            available=Availability.unlimited(),
        )
    assert missing is None
    assert got is not None
    assert got.plan.level == "1h"
    for point in got.series:
        rows = spans_in(world, point.t, point.t + HOUR, agent_id="agent-1")
        check_red(point.red, rows)
    assert sum(p.red.requests for p in got.series) == len(
        spans_in(world, got.plan.start, got.plan.end, agent_id="agent-1")
    )


def test_fleets_count_agents_by_status_and_version(world: w.World) -> None:
    with tenant(world) as conn:
        fleets = {f.fleet_id: f for f in list_fleets(conn, now=w.NOW)}
    assert set(fleets) == {"fleet-a", "fleet-b", ""}
    assert fleets["fleet-a"].by_status == {"online": 1, "offline": 1}
    versions = w.raw(
        world.db,
        "SELECT coalesce(fleet_id, '') AS f, version, count(*) AS n FROM agents "
        "WHERE org_id = :org GROUP BY 1, 2",
        org=world.org,
    )
    for r in versions:
        assert fleets[r["f"]].by_version[r["version"]] == r["n"]


@pytest.mark.parametrize("group_by", [["model"], ["provider", "agent"], ["fleet"], []])
@pytest.mark.parametrize("period", [None, "day", "week"])
def test_costs_equal_the_line_items(world: w.World, group_by: list[str], period: Any) -> None:
    start, end = w.NOW - 49 * HOUR - timedelta(minutes=13), w.NOW - timedelta(minutes=3)
    with tenant(world) as conn:
        got = cost_report(conn, start=start, end=end, group_by=group_by, period=period)
    items = w.raw(
        world.db,
        "SELECT c.*, coalesce(a.fleet_id, '') AS fleet, coalesce(c.agent_id, '') AS agent, "
        "date_trunc(coalesce(:p, 'day'), c.time, 'UTC') AS t FROM cost_line_items c "
        "LEFT JOIN agents a ON a.org_id = c.org_id AND a.agent_id = c.agent_id "
        "WHERE c.org_id = :org AND c.time >= :s AND c.time < :e",
        org=world.org,
        s=start,
        e=end,
        p=period,
    )
    want: dict[Any, Decimal] = {}
    for r in items:
        key = (r["t"] if period else None, tuple(r[d] for d in group_by))
        want[key] = want.get(key, Decimal(0)) + r["cost_usd"]
    have = {(g.period, tuple(g.key[d] for d in group_by)): g.totals.cost_usd for g in got.groups}
    assert have == want
    assert got.totals.cost_usd == sum(want.values(), Decimal(0))


def test_costs_top_n_folds_the_rest(world: w.World) -> None:
    start, end = w.NOW - 50 * HOUR, w.NOW
    with tenant(world) as conn:
        full = cost_report(conn, start=start, end=end, group_by=["model", "agent"])
        top = cost_report(conn, start=start, end=end, group_by=["model", "agent"], top=2)
    assert len(top.groups) == 3
    assert top.groups[-1].key["model"] == "(other)"
    assert top.totals == full.totals
    best = sorted(full.groups, key=lambda g: -g.totals.cost_usd)[:2]
    assert [g.key for g in top.groups[:2]] == [g.key for g in best]

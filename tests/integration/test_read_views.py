"""Task runs, events, settings, subsystem, staff and metrics-query readers against raw rows.

Each reader runs in a scoped transaction (tenant of one org, or support for the staff
views) over the world of ``_read_world``; every number is recomputed from the raw rows.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

import pytest
from sqlalchemy import Connection

from storage.database import Database
from storage.errors import InvalidInputError
from storage.read._common import Availability, QueryTooBroadError, availability, floor_to
from storage.read.events import EventFilter, search_events, tail_events
from storage.read.query import Filter, Measure, MetricsQuery, run_query
from storage.read.settings import org_settings
from storage.read.staff import fleet_explorer, global_overview, org_explorer, platform_health
from storage.read.subsystems import damn_view, mosaic_view, uce_view
from storage.read.task_runs import search_task_runs, task_run_detail
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction
from tests.integration import _read_world as w
from tests.integration.test_read_overview import check_red, close, exact_quantile

HOUR = timedelta(hours=1)
ALL = Availability.unlimited()
START, END = w.NOW - 51 * HOUR, w.NOW + timedelta(minutes=1)


@pytest.fixture
def world(database: Database) -> w.World:
    return w.build(database)


def tenant(world: w.World, org: Any = None) -> AbstractContextManager[Connection]:
    return scoped_transaction(world.db.app_engine(), Scope(DbRole.TENANT, org or world.org))


def support(world: w.World) -> AbstractContextManager[Connection]:
    return scoped_transaction(world.db.app_engine(), Scope(DbRole.SUPPORT))


def org_rows(world: w.World, sql: str, **params: Any) -> list[dict[str, Any]]:
    return w.raw(world.db, sql, org=world.org, **params)


def test_task_run_search_sorts_filters_and_pages(world: w.World) -> None:
    want = org_rows(world, "SELECT * FROM task_runs WHERE org_id = :org AND started_at IS NOT NULL")
    sorts: tuple[tuple[Literal["time", "duration", "cost"], str], ...] = (
        ("time", "started_at"),
        ("duration", "duration_ms"),
        ("cost", "cost_usd"),
    )
    for sort, col in sorts:
        seen: list[Any] = []
        after: Any = None
        with tenant(world) as conn:
            while True:
                page = search_task_runs(conn, start=START, end=END, sort=sort, after=after, limit=3)
                seen += page.runs
                after = page.next_after
                if after is None:
                    break
        assert sorted(r.task_run_id for r in seen) == sorted(r["task_run_id"] for r in want)
        values = [getattr(r, col) if getattr(r, col) is not None else -1 for r in seen]
        assert values == sorted(values, reverse=True), sort
    with tenant(world) as conn:
        failed = search_task_runs(conn, start=START, end=END, statuses=["failed"], limit=500)
        cheap = search_task_runs(conn, start=START, end=END, max_cost=Decimal("0.5"), limit=500)
        titled = search_task_runs(conn, start=START, end=END, text="REPORT RUN-1", limit=500)
        wild = search_task_runs(conn, start=START, end=END, text="%", limit=500)
    assert {r.task_run_id for r in failed.runs} == {
        r["task_run_id"] for r in want if r["status"] == "failed"
    }
    assert {r.task_run_id for r in cheap.runs} == {
        r["task_run_id"] for r in want if r["cost_usd"] <= Decimal("0.5")
    }
    titles = org_rows(
        world,
        "SELECT r.task_run_id FROM task_runs r JOIN tasks t ON t.org_id = r.org_id "
        "AND t.task_id = r.task_id WHERE r.org_id = :org AND (t.title ILIKE '%report run-1%' "
        "OR r.task_run_id ILIKE '%report run-1%')",
    )
    assert {r.task_run_id for r in titled.runs} == {r["task_run_id"] for r in titles} != set()
    assert wild.runs == ()


def test_task_run_detail_costs_sum_to_the_run(world: w.World) -> None:
    runs = org_rows(world, "SELECT task_run_id, cost_usd FROM task_runs WHERE org_id = :org")
    with tenant(world) as conn:
        for run in runs:
            got = task_run_detail(conn, run["task_run_id"], now=w.NOW)
            assert got is not None
            assert sum((i.cost_usd for i in got.cost_items), Decimal(0)) == run["cost_usd"]
        assert task_run_detail(conn, "no-such-run", now=w.NOW) is None
    # The other org's run of the same id is not this org's.
    with tenant(world, world.other) as conn:
        theirs = task_run_detail(conn, runs[0]["task_run_id"], now=w.NOW)
    other = w.raw(
        world.db,
        "SELECT cost_usd FROM task_runs WHERE org_id = :o AND task_run_id = :r",
        o=world.other,
        r=runs[0]["task_run_id"],
    )
    assert (theirs is None) == (not other)
    assert theirs is None or theirs.run.cost_usd == other[0]["cost_usd"]


def test_event_search_pages_newest_first_and_filters(world: w.World) -> None:
    want = org_rows(
        world,
        "SELECT * FROM events WHERE org_id = :org AND time >= :s AND time < :e",
        s=START,
        e=END,
    )
    seen: list[Any] = []
    before: Any = None
    with tenant(world) as conn:
        while True:
            page = search_events(conn, EventFilter(), start=START, end=END, before=before, limit=4)
            seen += page.events
            before = page.next_before
            if before is None:
                break
        errors = search_events(
            conn,
            EventFilter(severities=["error"], agent_id="agent-2"),
            start=START,
            end=END,
            limit=500,
        )
        text = search_events(conn, EventFilter(text="OF AGENT-3"), start=START, end=END, limit=500)
        with pytest.raises(QueryTooBroadError):
            search_events(conn, EventFilter(text="x"), start=w.NOW - 8 * 24 * HOUR, end=w.NOW)
    assert sorted(e.event_id for e in seen) == sorted(r["event_id"] for r in want)
    assert [e.mark for e in seen] == sorted((e.mark for e in seen), reverse=True)
    assert {e.event_id for e in errors.events} == {
        r["event_id"] for r in want if r["severity"] == "error" and r["agent_id"] == "agent-2"
    }
    assert {e.event_id for e in text.events} == {
        r["event_id"] for r in want if r["agent_id"] == "agent-3"
    }


def test_event_tail_resumes_after_its_mark(world: w.World) -> None:
    with tenant(world) as conn:
        first = tail_events(conn, EventFilter(), since=START, limit=5)
        rest = tail_events(conn, EventFilter(), since=START, after=first[-1].mark)
    total = org_rows(
        world, "SELECT count(*) AS n FROM events WHERE org_id = :org AND time >= :s", s=START
    )
    assert len(first) + len(rest) == total[0]["n"]
    marks = [e.mark for e in (*first, *rest)]
    assert marks == sorted(marks)
    assert len(set(marks)) == len(marks)


def test_settings_show_the_windows_in_force(world: w.World) -> None:
    with world.db.admin_engine().begin() as conn:
        from sqlalchemy import text

        conn.execute(
            text("UPDATE orgs SET retention_overrides = '{\"spans\": 2}' WHERE id = :o"),
            {"o": world.org},
        )
    with tenant(world) as conn:
        got = org_settings(conn)
    windows = {r.data_class: (r.days, r.overridden) for r in got.retention}
    tiers = {
        r["data_class"]: r["days"]
        for r in w.raw(world.db, "SELECT * FROM retention_tiers WHERE plan = 'pro'")
    }
    assert windows["spans"] == (2, True)
    assert windows["rollup_1m"] == (tiers["rollup_1m"], False)
    assert got.plan == "pro"
    assert got.trace_sample_percent == Decimal(10)


def test_mosaic_view_matches_raw_spans(world: w.World) -> None:
    spans = org_rows(world, "SELECT * FROM spans WHERE org_id = :org")
    with tenant(world) as conn:
        got = mosaic_view(conn, start=START, end=END, step=HOUR, available=ALL)
    routes: dict[Any, list[int]] = {}
    edges: dict[Any, int] = {}
    for s in spans:
        a = s["attributes"]
        if isinstance(a.get("mosaic.routing.route"), str):
            k = (a["mosaic.routing.route"], a.get("mosaic.routing.outcome", ""))
            routes.setdefault(k, [0, 0])[0] += 1
            routes[k][1] += s["status_code"] != 2
        if isinstance(a.get("mosaic.handoff.to_agent"), str):
            k2 = (s["agent_id"], a["mosaic.handoff.to_agent"])
            edges[k2] = edges.get(k2, 0) + 1
    assert {(r.route, r.outcome): [r.decisions, r.successes] for r in got.routes} == routes
    assert {(e.from_agent, e.to_agent): e.handoffs for e in got.edges} == edges
    volume = {n.agent_id: n.spans for n in got.nodes}
    for agent, n in volume.items():
        assert n == sum(s["agent_id"] == agent for s in spans)
    assert sum(p.decisions for p in got.timeline) == sum(v[0] for v in routes.values())
    assert sum(p.handoffs for p in got.timeline) == sum(edges.values())


def test_damn_view_grid_uptime_and_queue(world: w.World) -> None:
    with tenant(world) as conn:
        got = damn_view(conn, start=START, end=END, step=HOUR, now=w.NOW, available=ALL)
    assert got.by_status == {"online": 1, "degraded": 1, "offline": 2}
    assert {c.agent_id: c.status for c in got.grid}["agent-4"] == "offline"
    beats = org_rows(
        world,
        "SELECT agent_id, time FROM events WHERE org_id = :org "
        "AND event_type = 'damn.agent.heartbeat'",
    )
    assert sum(p.heartbeats for p in got.uptime) == len(beats)
    for p in got.uptime:
        minutes = {
            floor_to(b["time"], 60)
            for b in beats
            if b["agent_id"] == p.agent_id and p.t <= b["time"] < p.t + HOUR
        }
        assert p.uptime == pytest.approx(len(minutes) / 60)
    depth = org_rows(
        world,
        "SELECT value, time FROM metric_points WHERE org_id = :org AND metric = 'damn.queue.depth'",
    )
    for q in got.queue_depth:
        values = [d["value"] for d in depth if q.t <= d["time"] < q.t + HOUR]
        assert q.points == len(values)
        assert q.max == max(values)
        assert q.mean == pytest.approx(sum(values) / len(values))


def test_uce_view_matches_raw_spans(world: w.World) -> None:
    spans = [
        s
        for s in org_rows(world, "SELECT * FROM spans WHERE org_id = :org")
        if isinstance(s["attributes"].get("uce.operation.name"), str)
    ]
    with tenant(world) as conn:
        got = uce_view(conn, start=START, end=END, step=HOUR, available=ALL)
    for op in got.operations:
        rows = [s for s in spans if s["attributes"]["uce.operation.name"] == op.operation]
        assert op.ops == len(rows)
        hits = [s["attributes"]["uce.cache.hit"] for s in rows]
        assert op.cache_hit_ratio == pytest.approx(sum(hits) / len(hits))
        sizes = [float(s["attributes"]["uce.context.size_tokens"]) for s in rows]
        assert close(op.context_size_p95, exact_quantile(sizes, 0.95))
    assert got.overall.ops == len(spans)
    assert sum(p.ops for p in got.ops_per_minute) == len(spans)
    recent = [s for s in spans if s["start_time"] >= END - 24 * HOUR]
    churn: dict[str, int] = {}
    for s in recent:
        c = s["attributes"]["uce.context.id"]
        churn[c] = churn.get(c, 0) + (s["attributes"]["uce.operation.name"] == "write")
    assert {c.context_id: c.churn for c in got.top_contexts} == churn


def test_staff_views_cover_every_org(world: w.World) -> None:
    spans = w.raw(world.db, "SELECT * FROM spans WHERE start_time >= :s", s=START)
    with support(world) as conn:
        glob = global_overview(conn, start=START, end=END, now=w.NOW)
        orgs = org_explorer(conn, start=START, end=END, now=w.NOW, sort="requests", descending=True)
        failing = fleet_explorer(conn, start=START, end=END, limit=100)
        health = platform_health(conn, start=START, end=END)
    check_red(glob.red, spans)
    assert glob.orgs == 2
    assert sum(glob.agents.values()) == 8
    items = w.raw(
        world.db, "SELECT sum(cost_usd) AS c FROM cost_line_items WHERE time >= :s", s=START
    )
    assert glob.cost.cost_usd == items[0]["c"]
    assert [o.org_id for o in orgs] == [world.org, world.other]
    for o in orgs:
        check_red(o.red, [s for s in spans if s["org_id"] == o.org_id])
        assert o.agents == 4
        assert o.agents_offline == 2
        assert 0 <= o.health.score <= 100
    for a in failing:
        rows = [s for s in spans if s["org_id"] == a.org_id and s["agent_id"] == a.agent_id]
        assert (a.requests, a.errors) == (len(rows), sum(s["status_code"] == 2 for s in rows))
    assert [a.score for a in failing] == sorted((a.score for a in failing), reverse=True)
    assert health.relation_sizes["spans"] > 0
    assert "span_red_1m" in health.relation_sizes


@pytest.mark.parametrize("step", [None, HOUR, timedelta(minutes=30), timedelta(days=1)])
def test_query_breakdowns_and_series_match_raw_spans(world: w.World, step: Any) -> None:
    start, end = floor_to(w.NOW - 49 * HOUR, 3600), floor_to(w.NOW, 3600)
    q = MetricsQuery(
        "span_red",
        (
            Measure("spans", "count"),
            Measure("errors", "sum"),
            Measure("duration_ms", "p95"),
            Measure("duration_ms", "avg"),
            Measure("duration_ms", "max"),
            Measure("spans", "rate"),
        ),
        start,
        end,
        group_by=("agent_id",),
        filters=(Filter("agent_id", "not_in", ("agent-4",)),),
        step=step,
    )
    with tenant(world) as conn:
        got = run_query(conn, q, available=ALL)
    spans = org_rows(
        world,
        "SELECT * FROM spans WHERE org_id = :org AND start_time >= :s AND start_time < :e",
        s=got.start,
        e=got.end,
    )
    width = (step or (got.end - got.start)).total_seconds()
    for row in got.rows:
        r = dict(zip(got.columns, row, strict=True))
        rows = [
            s
            for s in spans
            if s["agent_id"] == r["agent_id"]
            and (step is None or r["t"] <= s["start_time"] < r["t"] + step)
        ]
        durations = [s["duration_ms"] for s in rows]
        assert r["count(spans)"] == len(rows)
        assert r["sum(errors)"] == sum(s["status_code"] == 2 for s in rows)
        assert close(r["p95(duration_ms)"], exact_quantile(durations, 0.95))
        assert r["avg(duration_ms)"] == pytest.approx(math.fsum(durations) / len(durations))
        assert r["max(duration_ms)"] == max(durations)
        assert r["rate(spans)"] == pytest.approx(len(rows) / width)
    assert "agent-4" not in {dict(zip(got.columns, r, strict=True))["agent_id"] for r in got.rows}
    assert sum(dict(zip(got.columns, r, strict=True))["count(spans)"] for r in got.rows) == sum(
        s["agent_id"] != "agent-4" for s in spans
    )
    if step == HOUR:
        assert got.levels == ("1h",)
    if step == timedelta(minutes=30):
        assert got.levels == ("1m",)


def test_query_level_never_reaches_past_retention(world: w.World) -> None:
    # Free plan: 1-minute rollups for 7 days; a 10-day series of 30-minute steps needs 1 m.
    kept = availability({"rollup_1m": 7, "rollup_1h": 30, "rollup_1d": 90}, w.NOW)
    q = MetricsQuery(
        "org_red",
        (Measure("spans", "count"),),
        w.NOW - 10 * 24 * HOUR,
        w.NOW,
        step=timedelta(minutes=30),
    )
    with tenant(world) as conn:
        with pytest.raises(InvalidInputError, match="retention"):
            run_query(conn, q, available=kept)
        ok = run_query(
            conn, MetricsQuery("org_red", q.measures, q.start, q.end, step=HOUR), available=kept
        )
        breakdown = run_query(
            conn, MetricsQuery("org_red", q.measures, q.start, q.end), available=kept
        )
    assert ok.levels == ("1h",)
    assert "1m" in breakdown.levels
    assert breakdown.start <= q.start


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (MetricsQuery("nope", (Measure("spans", "count"),), START, END), "unknown"),
        (MetricsQuery("span_red", (Measure("spans", "p95"),), START, END), "not available"),
        (
            MetricsQuery("span_red", (Measure("spans", "sum"),), START, END, group_by=("route",)),
            "dimension",
        ),
        (MetricsQuery("metric_rollup", (Measure("value", "avg"),), START, END), "filter on metric"),
        (
            MetricsQuery(
                "org_red", (Measure("spans", "sum"),), START, END, step=timedelta(seconds=90)
            ),
            "minutes",
        ),
    ],
)
def test_query_refuses_bad_input(world: w.World, query: MetricsQuery, message: str) -> None:
    with tenant(world) as conn, pytest.raises(InvalidInputError, match=message):
        run_query(conn, query, available=ALL)


def test_query_metric_and_cost_families(world: w.World) -> None:
    q = MetricsQuery(
        "metric_rollup",
        (Measure("value", "avg"), Measure("value", "max")),
        START,
        END,
        group_by=("agent_id",),
        filters=(Filter("metric", "eq", ("damn.queue.depth",)),),
    )
    c = MetricsQuery("cost_daily", (Measure("cost_usd", "sum"),), START, END, group_by=("model",))
    with tenant(world) as conn:
        got = run_query(conn, q, available=ALL)
        cost = run_query(conn, c, available=ALL)
    points = org_rows(
        world,
        "SELECT agent_id, value FROM metric_points WHERE org_id = :org AND metric = 'damn.queue.depth'",
    )
    for agent, avg, top in got.rows:
        values = [p["value"] for p in points if p["agent_id"] == agent]
        assert avg == pytest.approx(sum(values) / len(values))
        assert top == max(values)
    assert cost.levels == ("1d",)
    items = org_rows(
        world,
        "SELECT model, sum(cost_usd) AS c FROM cost_line_items WHERE org_id = :org "
        "AND time >= :s AND time < :e GROUP BY model",
        s=cost.start,
        e=cost.end,
    )
    assert {r[0]: r[1] for r in cost.rows} == {i["model"]: i["c"] for i in items}


def test_series_at_the_level_width_reads_stored_quantiles(world: w.World) -> None:
    # One rollup row per step: the reader reads the row's stored p95 instead of merging.
    start, end = floor_to(w.NOW - 30 * HOUR, 3600), floor_to(w.NOW, 3600)
    q = MetricsQuery(
        "org_red",
        (Measure("spans", "count"), Measure("duration_ms", "p95"), Measure("duration_ms", "p50")),
        start,
        end,
        step=HOUR,
    )
    with tenant(world) as conn:
        got = run_query(conn, q, available=ALL)
    spans = org_rows(
        world,
        "SELECT start_time, duration_ms FROM spans WHERE org_id = :org AND start_time >= :s "
        "AND start_time < :e",
        s=start,
        e=end,
    )
    assert got.rows
    for t, n, p95, p50 in got.rows:
        durations = [s["duration_ms"] for s in spans if t <= s["start_time"] < t + HOUR]
        assert n == len(durations)
        assert close(p95, exact_quantile(durations, 0.95))
        assert close(p50, exact_quantile(durations, 0.5))

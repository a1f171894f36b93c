"""Every panel query runs as Grafana would run it, as an org's pinned login, on both engines.

Queries are expanded as Grafana expands them (``dashboards_json._gen.macros``: template
variables with multi-value formatting, ``$__interval``, ``$__timeFilter``,
``$__timeGroupAlias``, ``$__timeFrom()``, ``$__timeTo()``) and executed over telemetry
written by the real ingest writer, as the read-only login ``aeos grafana provision``
creates: client and subsystem dashboards as org A's login, the console as the staff
login. Each returns the shape its panel needs; headline numbers equal a recomputation from
the raw rows; and org A's login sees nothing of org B, even through a query edited by hand.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy import text

from dashboards_json._gen import build_all
from dashboards_json._gen.macros import Request, expand
from storage import grafana, hist
from storage.database import Database
from tests.integration import _dashboard_world as w

BOARDS = build_all()
DAY = timedelta(days=1)
# (start, end, interval_ms): 1 minute, 1 hour (unaligned start), 1 day levels, and 90 days.
RANGES = [
    (w.T0 + DAY, w.T0 + 2 * DAY, 60_000),
    (w.T0 + timedelta(minutes=30), w.T0 + 3 * DAY, 300_000),
    (w.T0 - 20 * DAY, w.T0 + 20 * DAY, 3_600_000),
    (w.T0 - 60 * DAY, w.T0 + 30 * DAY, 7_200_000),
]
ORG_FILTER = re.compile(r"\b(\w+\.)?org_id IN \(\$\{org:sqlstring\}\)")


@dataclass
class Ctx:
    world: w.World
    db: Database
    timescaledb: bool
    logins: dict[str, grafana.GrafanaLogin]

    def connect(self, who: str, password: str | None = None) -> psycopg.Connection[Any]:
        login = self.logins[who]
        info = self.db.admin_url.set(
            drivername="postgresql", username=login.role, password=password or login.password
        ).render_as_string(hide_password=False)
        return psycopg.connect(info, autocommit=True)


@pytest.fixture
def ctx(database: Database) -> Iterator[Ctx]:
    world = w.build(database)
    with database.admin_engine().begin() as conn:
        logins = {
            "a": grafana.provision_org_login(conn, world.a.name),
            "b": grafana.provision_org_login(conn, world.b.name),
            "staff": grafana.provision_staff_login(
                conn, f"aeos_grafana_staff_{uuid.uuid4().hex[:8]}"
            ),
        }
        timescale = grafana.storage_engine(conn) == "timescale"
    try:
        yield Ctx(world, database, timescale, logins)
    finally:
        with psycopg.connect(
            database.admin_url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        ) as conn:
            for login in logins.values():
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    [login.role],
                )
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login.role)))


def _values(board: dict[str, Any], org: uuid.UUID) -> dict[str, list[str] | None]:
    values: dict[str, list[str] | None] = {}
    for var in board["templating"]["list"]:
        if var["name"] == "org":
            values["org"] = [str(org)]
        elif var["type"] == "textbox":
            values[var["name"]] = [""]
        else:
            values[var["name"]] = None  # All
    return values


def _request(ctx: Ctx, board: dict[str, Any], org: uuid.UUID, rng: tuple[datetime, datetime, int],
             **values: list[str] | None) -> Request:  # fmt: skip
    chosen = {**_values(board, org), **values}
    return Request(rng[0], rng[1], rng[2], chosen, timescaledb=ctx.timescaledb)


def _run(conn: psycopg.Connection[Any], query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = conn.execute(query)
    assert cur.description is not None
    return [d.name for d in cur.description], cur.fetchall()


def _targets(board: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if "rawSql" in target:
                yield panel, target


def _check_shape(panel: dict[str, Any], target: dict[str, Any], cols: list[str],
                 rows: list[tuple[Any, ...]]) -> None:  # fmt: skip
    where = f"{panel['title']} [{target['refId']}]"
    assert len(set(cols)) == len(cols), where
    assert all(c and c != "?column?" for c in cols), where
    if target["format"] == "time_series":
        assert "time" in cols, where
        times = [r[cols.index("time")] for r in rows]
        assert None not in times, where
        assert times == sorted(times), f"{where}: time not sorted"
        others = [i for i, c in enumerate(cols) if c != "time"]
        assert others, where
        for r in rows:
            assert all(
                isinstance(r[i], int | float | Decimal | str) or r[i] is None for i in others
            ), where
    if target["refId"] == "nodes":
        assert {"id", "title", "mainstat"} <= set(cols), where
    if target["refId"] == "edges":
        assert {"id", "source", "target", "mainstat"} <= set(cols), where
    if panel["type"] == "stat" and not panel["options"]["reduceOptions"]["values"]:
        assert len(rows) == 1, where


def _boards(prefixes: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    return [(p, b) for p, b in BOARDS.items() if p.startswith(prefixes)]


def _all_results(ctx: Ctx, who: str, org: uuid.UUID, prefixes: tuple[str, ...],
                 edit: Any = None) -> dict[str, Any]:  # fmt: skip
    """Every query of the dashboards, every range: (columns, rows) by a readable key."""
    out: dict[str, Any] = {}
    with ctx.connect(who) as conn:
        for path, board in _boards(prefixes):
            variables = board["templating"]["list"]
            for rng in RANGES:
                request = _request(ctx, board, org, rng)
                for var in variables:
                    if var["type"] == "query":
                        query = edit(var["query"]) if edit else var["query"]
                        out[f"{path} var {var['name']} {rng}"] = _run(
                            conn, expand(query, variables, request)
                        )
                for panel, target in _targets(board):
                    query = edit(target["rawSql"]) if edit else target["rawSql"]
                    cols, rows = _run(conn, expand(query, variables, request))
                    _check_shape(panel, target, cols, rows)
                    out[f"{path} #{panel['id']} {panel['title']} {target['refId']} {rng}"] = (
                        cols,
                        rows,
                    )
    return out


def test_every_panel_query_runs_with_the_shape_its_panel_needs(ctx: Ctx) -> None:
    client = _all_results(ctx, "a", ctx.world.a.org_id, ("client/", "subsystems/"))
    # Staff see every dashboard (the client ones with the org picker set to org A).
    staff = _all_results(ctx, "staff", ctx.world.a.org_id, ("console/", "client/", "subsystems/"))
    panels = sum(1 for _ in (t for _, b in BOARDS.items() for t in _targets(b)))
    assert len([k for k in staff if " var " not in k]) == panels * len(RANGES)
    # Org A's panels as staff (org picker on A) are what A's own login sees; only the org
    # picker itself offers staff more.
    same = [k for k in client if " var org " not in k]
    assert _sorted({k: staff[k] for k in same}) == _sorted({k: client[k] for k in same})
    # The data reaches the panels: most queries of the 3-day range return rows with numbers.
    filled = [k for k, (_, rows) in client.items() if rows and any(
        isinstance(v, int | float) and v for r in rows for v in r)]  # fmt: skip
    assert len(filled) > len(client) // 2


def _sorted(results: dict[str, Any]) -> dict[str, Any]:
    """Results with rows in a fixed order (a time series orders by time only)."""
    return {k: (cols, sorted(rows, key=repr)) for k, (cols, rows) in results.items()}


def _dump(results: dict[str, Any]) -> str:
    return json.dumps({k: v[1] for k, v in results.items()}, default=str)


def test_org_a_login_sees_nothing_of_org_b(ctx: Ctx) -> None:
    a, b = ctx.world.a, ctx.world.b
    scope = ("client/", "subsystems/")
    mine = _all_results(ctx, "a", a.org_id, scope)
    assert "orga" in _dump(mine)
    for results in (mine, _all_results(ctx, "a", b.org_id, scope)):
        dumped = _dump(results)
        assert "orgb" not in dumped
        assert str(b.org_id) not in dumped
        assert b.name not in dumped
    # Asking for B's org as A gives what asking for an org that does not exist gives.
    as_b = _all_results(ctx, "a", b.org_id, scope)
    as_nobody = _all_results(ctx, "a", uuid.uuid4(), scope)
    assert _sorted(as_b) == _sorted(as_nobody)
    # A query edited to drop its org filter still sees only A's rows, exactly as filtered.
    unfiltered = _all_results(ctx, "a", a.org_id, scope, edit=lambda q: ORG_FILTER.sub("true", q))
    assert _sorted(unfiltered) == _sorted(mine)
    # And B's login sees B's data, none of A's.
    theirs = _dump(_all_results(ctx, "b", b.org_id, ("client/org-overview",)))
    assert "orga" not in theirs
    assert str(a.org_id) not in theirs


def test_pinned_login_is_read_only_and_cannot_leave_its_org(ctx: Ctx) -> None:
    a, b = ctx.world.a, ctx.world.b
    with ctx.connect("a") as conn:
        conn.execute("SELECT set_config('aeos.org_id', %s, false)", [str(b.org_id)])
        names = {r[0] for r in conn.execute("SELECT name FROM orgs")}
        assert names == {a.name}
        assert conn.execute(
            "SELECT count(*) FROM spans WHERE org_id = %s", [b.org_id]
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM public.task_runs").fetchone()[0] > 0  # type: ignore[index]
        assert "orgb" not in json.dumps(
            conn.execute("SELECT * FROM public.agents").fetchall(), default=str
        )
        conn.execute("SET default_transaction_read_only = off")
        for statement in (
            "INSERT INTO alert_rules (org_id, name, type) VALUES (aeos_current_org(), 'x', 'threshold')",
            "DELETE FROM notifications",
            "UPDATE agents SET name = 'x'",
            "SELECT count(*) FROM public.spans",
            "SELECT count(*) FROM platform_health",
            "SELECT count(*) FROM platform_red_levels",
            "SET ROLE aeos_tenant",
        ):
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute(statement)


def _verifier(ctx: Ctx, role: str) -> str:
    # The test server may trust local connections, so compare what it stores instead.
    (stored,) = _raw(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = :r", r=role)[0]
    return str(stored)


def test_provisioning_again_rotates_the_password(ctx: Ctx) -> None:
    old = ctx.logins["a"].password
    before = _verifier(ctx, ctx.logins["a"].role)
    with ctx.db.admin_engine().begin() as conn:
        again = grafana.provision_org_login(conn, ctx.world.a.name)
    assert again.role == ctx.logins["a"].role
    assert again.password != old
    assert _verifier(ctx, again.role) != before
    assert before.startswith(("SCRAM-SHA-256$", "md5"))
    ctx.logins["a"] = again
    with ctx.connect("a") as conn:
        assert conn.execute("SELECT aeos_current_org()").fetchone() == (ctx.world.a.org_id,)


# -- numbers against the raw rows ----------------------------------------------------------


def _level(start: datetime, end: datetime, interval_ms: int) -> int:
    """The documented level rule (migration 0015), in seconds."""
    if interval_ms >= 86_400_000 or end - start > timedelta(days=14):
        return 86_400
    if interval_ms >= 3_600_000 or end - start > timedelta(days=2):
        return 3_600
    return 60


def _floor(t: datetime, seconds: int) -> float:
    epoch = t.timestamp()
    return epoch - epoch % seconds


def _in_window(t: datetime, rng: tuple[datetime, datetime, int], level: int | None = None) -> bool:
    level = level or _level(*rng)
    return _floor(rng[0], level) <= _floor(t, level) < rng[1].timestamp()


def _raw(ctx: Ctx, query: str, **params: Any) -> list[Any]:
    with ctx.db.admin_engine().connect() as conn:
        return list(conn.execute(text(query), params))


def _panel_result(ctx: Ctx, who: str, path: str, title: str, rng: tuple[datetime, datetime, int],
                  ref: str = "A", **values: list[str] | None) -> tuple[list[str], list[Any]]:  # fmt: skip
    board = BOARDS[path]
    panel = next(p for p in board["panels"] if p["title"] == title)
    target = next(t for t in panel["targets"] if t["refId"] == ref)
    request = _request(ctx, board, ctx.world.a.org_id, rng, **values)
    with ctx.connect(who) as conn:
        return _run(conn, expand(target["rawSql"], board["templating"]["list"], request))


def _close(got: Any, want: float, rel: float = 1e-9) -> bool:
    return got is not None and math.isclose(float(got), want, rel_tol=rel, abs_tol=1e-9)


@pytest.mark.parametrize("rng", RANGES, ids=["24h-1m", "3d-1h", "40d-1d", "90d-1d"])
def test_org_overview_numbers_equal_the_raw_spans(
    ctx: Ctx, rng: tuple[datetime, datetime, int]
) -> None:
    spans = [s for s in _raw(ctx, "SELECT start_time, status_code, duration_ms FROM spans "
                             "WHERE org_id = :o", o=ctx.world.a.org_id)
             if _in_window(s.start_time, rng)]  # fmt: skip
    assert spans
    path = "client/org-overview.json"
    assert _panel_result(ctx, "a", path, "Spans", rng)[1] == [(len(spans),)]
    errors = sum(s.status_code == 2 for s in spans)
    ((rate,),) = _panel_result(ctx, "a", path, "Error rate", rng)[1]
    assert _close(rate, errors / len(spans))
    ((p95,),) = _panel_result(ctx, "a", path, "p95 latency", rng)[1]
    durations = sorted(s.duration_ms for s in spans)
    exact = durations[math.ceil(0.95 * len(durations)) - 1]
    assert abs(p95 - exact) <= hist.RELATIVE_ERROR * exact + 1e-9
    # Per point: spans per second times the seconds a point covers is the raw count.
    level, step = _level(*rng), rng[2] / 1000
    want: Counter[float] = Counter(_floor(datetime.fromtimestamp(_floor(s.start_time, level), UTC),
                                          int(step)) for s in spans)  # fmt: skip
    _cols, rows = _panel_result(ctx, "a", path, "Spans per second", rng)
    got = {_epoch(r[0]): r[1] * max(level, step) for r in rows}
    assert set(got) == set(want)
    assert all(_close(got[k], want[k]) for k in want)


def _epoch(t: Any) -> float:
    return t.timestamp() if isinstance(t, datetime) else float(t)


@pytest.mark.parametrize("rng", RANGES[1:3], ids=["3d-1h", "40d-1d"])
def test_cost_numbers_equal_the_raw_cost_items(
    ctx: Ctx, rng: tuple[datetime, datetime, int]
) -> None:
    items = [i for i in _raw(ctx, "SELECT time, provider, model, cost_usd, agent_id FROM "
                             "cost_line_items WHERE org_id = :o", o=ctx.world.a.org_id)
             if _in_window(i.time, rng, 86_400)]  # fmt: skip
    assert items
    total = float(sum(i.cost_usd for i in items))
    ((cost,),) = _panel_result(ctx, "a", "client/org-overview.json", "Cost", rng)[1]
    assert _close(cost, total)
    cols, rows = _panel_result(ctx, "a", "client/costs.json", "Cost by model", rng)
    by_model: defaultdict[tuple[str, str], float] = defaultdict(float)
    for i in items:
        by_model[(i.provider, i.model)] += float(i.cost_usd)
    got = {(r[0], r[1]): r[cols.index("cost_usd")] for r in rows}
    assert set(got) == set(by_model)
    assert all(_close(got[k], v) for k, v in by_model.items())
    agent = items[0].agent_id or ""
    ((one,),) = _panel_result(ctx, "a", "client/costs.json", "Cost", rng, agent=[agent])[1]
    assert _close(one, float(sum(i.cost_usd for i in items if (i.agent_id or "") == agent)))
    ((budget,),) = _panel_result(ctx, "a", "client/costs.json", "Monthly budget", rng)[1]
    assert budget == 120


def test_subsystem_numbers_equal_the_raw_rows(ctx: Ctx) -> None:
    rng = RANGES[1]
    org = ctx.world.a.org_id
    uce = [s for s in _raw(ctx, "SELECT start_time, attributes FROM spans WHERE org_id = :o "
                           "AND attributes ? 'uce.operation.name'", o=org)
           if _in_window(s.start_time, rng)]  # fmt: skip
    hits = [
        s.attributes["uce.cache.hit"]
        for s in uce
        if isinstance(s.attributes.get("uce.cache.hit"), bool)
    ]
    ((ratio,),) = _panel_result(ctx, "a", "subsystems/uce.json", "Cache hit ratio (range)", rng)[1]
    assert _close(ratio, sum(hits) / len(hits))
    beats = Counter(e.agent_id for e in _raw(ctx, "SELECT time, agent_id FROM events WHERE "
                    "org_id = :o AND event_type = 'damn.agent.heartbeat'", o=org)
                    if _in_window(e.time, rng))  # fmt: skip
    cols, rows = _panel_result(ctx, "a", "subsystems/damn.json", "Heartbeats by agent", rng)
    assert {r[0]: r[1] for r in rows} == dict(beats)
    runs = {r.task_run_id for r in _raw(ctx, "SELECT task_run_id, started_at FROM task_runs "
            "WHERE org_id = :o", o=org) if rng[0] <= r.started_at <= rng[1]}  # fmt: skip
    cols, rows = _panel_result(ctx, "a", "client/task-runs.json", "Task runs", rng)
    assert {r[0] for r in rows} == runs
    assert len(runs) > 0
    some = sorted(runs)[0]
    cols, rows = _panel_result(ctx, "a", "client/task-runs.json", "Task runs", rng, search=[some])
    assert {r[0] for r in rows} == {r for r in runs if some in r}
    durations: defaultdict[str, list[float]] = defaultdict(list)
    for r in _raw(
        ctx, "SELECT start_time, agent_id, duration_ms FROM spans WHERE org_id = :o", o=org
    ):
        if _in_window(r.start_time, rng):
            durations[r.agent_id or ""].append(r.duration_ms)
    slowest = _panel_result(ctx, "a", "client/agents-fleets.json", "Slowest agents (p95)", rng)[1]
    assert {a for a, _ in slowest} == set(durations)
    for agent, p95 in slowest:
        ordered = sorted(durations[agent])
        exact = ordered[math.ceil(0.95 * len(ordered)) - 1]
        assert abs(p95 - exact) <= hist.RELATIVE_ERROR * exact + 1e-9, agent
    trace = rows[0][cols.index("trace_id")]
    assert re.fullmatch(r"[0-9a-f]{32}", trace)  # what the link to the trace view carries


def test_console_sees_every_org_and_names_the_unhealthy(ctx: Ctx) -> None:
    rng = RANGES[1]
    counts = Counter(s.org_id for s in _raw(ctx, "SELECT org_id, start_time FROM spans")
                     if _in_window(s.start_time, rng))  # fmt: skip
    cols, rows = _panel_result(ctx, "staff", "console/global-overview.json", "Spans", rng)
    assert rows == [(sum(counts.values()),)]
    cols, rows = _panel_result(ctx, "staff", "console/global-overview.json", "Orgs by health", rng)
    by_org = {uuid.UUID(r[0]): r for r in rows}
    for org in (ctx.world.a.org_id, ctx.world.b.org_id):
        assert by_org[org][cols.index("spans")] == counts[org]
        assert by_org[org][cols.index("alerts_firing")] == 1
        assert by_org[org][cols.index("agents_unhealthy")] == 2
    with ctx.connect("a") as conn, pytest.raises(pg_errors.InsufficientPrivilege):
        board = BOARDS["console/global-overview.json"]
        panel = board["panels"][0]
        conn.execute(
            expand(panel["targets"][0]["rawSql"], [], _request(ctx, board, ctx.world.a.org_id, rng))
        )


def test_alert_panels_read_instances_as_the_alerting_engine_stores_them(ctx: Ctx) -> None:
    rng = (w.T0, w.T0 + 3 * DAY, 3_600_000)
    board = "client/alerts-notifications.json"
    org = ctx.world.a.org_id
    firing = _raw(ctx, "SELECT count(*) FROM alert_states WHERE org_id = :o AND is_firing", o=org)
    assert _panel_result(ctx, "a", board, "Firing", rng)[1] == [(firing[0][0],)] == [(1,)]
    cols, rows = _panel_result(ctx, "a", board, "Rules", rng)
    rules = {r[0]: (r[cols.index("state")], r[cols.index("firing")], r[cols.index("instances")])
             for r in rows}  # fmt: skip
    assert rules == {"orga-threshold": ("alerting", 1, 3), "orga-budget": ("normal", 0, 1),
                     "orga-daily": ("normal", 0, 1)}  # fmt: skip
    assert rows[0][0] == "orga-threshold"  # firing first
    cols, rows = _panel_result(ctx, "a", board, "Instances", rng)
    assert [(r[cols.index("state")], json.loads(r[cols.index("labels")])) for r in rows] == [
        ("alerting", {"agent_id": "orga-agent-0"}),
        ("pending", {"agent_id": "orga-agent-1"}),
    ]
    # Old history ('firing', 'ok') is shown under the new names.
    evaluations: Counter[str] = Counter()
    for _, state, n in _panel_result(ctx, "a", board, "Evaluations by state", rng)[1]:
        evaluations[state] += n
    stored = _raw(ctx, "SELECT state FROM alert_evaluations WHERE org_id = :o", o=org)
    assert {"ok", "firing"} <= {r.state for r in stored}
    new = {"ok": "normal", "firing": "alerting"}
    assert evaluations == Counter(new.get(r.state, r.state) for r in stored)
    cols, rows = _panel_result(ctx, "staff", "console/anomalies-incidents.json",
                               "Incidents (firing now)", rng)  # fmt: skip
    mine = [r for r in rows if r[cols.index("org_id")] in (str(org), str(ctx.world.b.org_id))]
    assert sorted((r[cols.index("rule")], json.loads(r[cols.index("labels")])) for r in mine) == [
        ("orga-threshold", {"agent_id": "orga-agent-0"}),
        ("orgb-threshold", {"agent_id": "orgb-agent-0"}),
    ]
    everywhere = _raw(ctx, "SELECT count(*) FROM alert_states WHERE is_firing")[0][0]
    assert len(rows) == everywhere
    overview = "console/global-overview.json"
    assert _panel_result(ctx, "staff", overview, "Alerts firing", rng)[1] == [(everywhere,)]


def test_level_functions_follow_the_documented_rule(ctx: Ctx) -> None:
    with ctx.connect("a") as conn:
        for start, end, interval in [*RANGES, (w.T0, w.T0 + DAY, 3_600_000),
                                     (w.T0, w.T0 + DAY, 86_400_000)]:  # fmt: skip
            got = conn.execute(
                "SELECT extract(epoch FROM aeos_rollup_level(%s, %s, %s))::int, "
                "aeos_rollup_seconds(%s, %s, %s)",
                [start, end, interval] * 2,
            ).fetchone()
            level = _level(start, end, interval)
            assert got == (level, max(level, interval / 1000))

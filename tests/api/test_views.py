"""Every view route over HTTP, its numbers compared with a recomputation from raw rows.

The world of ``tests/integration/_read_world`` is written through the real ingest writer
into two orgs made by the ``api`` fixture; each route is called with a member key (the
org's own view), and the staff routes with a support key. Ranges are whole hours: the
org's retention no longer holds the 1-minute rollups of those days (the world is in the
past), so edges are read from the 1-hour level, and whole hours make that exact.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from alerting.cycle import run_cycle
from tests.api.conftest import OrgKeys, RunningApi
from tests.integration import _read_world as w

HOUR = timedelta(hours=1)
START = (w.NOW - 51 * HOUR).replace(minute=0, second=0)
END = (w.NOW + HOUR).replace(minute=0, second=0)
RANGE = {"start": START.isoformat(), "end": END.isoformat()}


class Env:
    def __init__(self, api: RunningApi) -> None:
        self.api = api
        self.a: OrgKeys = api.make_org(plan="pro")
        self.b: OrgKeys = api.make_org(plan="free")
        self.world = w.build(api.db, orgs=(self.a.org_id, self.b.org_id))

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        r = self.api.get(path, key or self.a.member_key, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def raw(self, sql: str, org: Any = None, **params: Any) -> list[dict[str, Any]]:
        return w.raw(self.api.db, sql, org=org or self.a.org_id, **params)

    def spans(self, org: Any = None, **where: Any) -> list[dict[str, Any]]:
        extra = "".join(f" AND {k} = :{k}" for k in where)
        return self.raw(
            "SELECT * FROM spans WHERE org_id = :org AND start_time >= :s "
            "AND start_time < :e" + extra,
            org,
            s=START,
            e=END,
            **where,
        )


@pytest.fixture
def env(api: RunningApi) -> Env:
    return Env(api)


def p95(values: list[float]) -> float:
    return sorted(values)[max(math.ceil(0.95 * len(values)), 1) - 1]


def near(got: float | None, exact: float) -> bool:
    return got is not None and abs(got - exact) <= 0.01 * exact + 1e-9


def test_overview(env: Env) -> None:
    got = env.get("/v1/overview", **RANGE)
    spans = env.spans()
    red = got["range"]["red"]
    assert red["requests"] == len(spans)
    assert red["errors"] == sum(s["status_code"] == 2 for s in spans)
    assert near(red["p95_ms"], p95([s["duration_ms"] for s in spans]))
    assert (
        got["range"]["coverage"]["levels"] == ["1h", "1d"]
        or "1h" in got["range"]["coverage"]["levels"]
    )
    cost = env.raw(
        "SELECT sum(cost_usd) AS c, count(*) AS n FROM cost_line_items WHERE org_id = :org"
    )
    assert Decimal(got["range"]["cost"]["cost_usd"]) == cost[0]["c"]
    assert got["range"]["cost"]["calls"] == cost[0]["n"]
    assert got["agents"] == {"online": 0, "degraded": 0, "offline": 4}  # silent for days
    assert got["alerts_firing"] == 0


def test_overview_counts_the_alerts_the_alerting_engine_fires(env: Env) -> None:
    # NoData (the world is in the past) fires the first rule at once; the second waits
    # out its ``for`` in Pending, which is not firing.
    for name, for_s in (("fires", 0), ("pending", 600)):
        body = {"name": name, "type": "threshold", "no_data_state": "alerting", "for_s": for_s,
                "params": {"measure": "span_count", "value": 1}}  # fmt: skip
        r = env.api.client.post("/v1/alert-rules", headers=env.api.headers(env.a.admin_key),
                                json=body)  # fmt: skip
        assert r.status_code == 201, r.text
    run_cycle(env.api.db.app_engine(), datetime.now(UTC).replace(second=0, microsecond=0))
    states = env.raw("SELECT state, is_firing FROM alert_states WHERE org_id = :org")
    assert sorted((s["state"], s["is_firing"]) for s in states) == [
        ("alerting", True),
        ("pending", False),
    ]
    assert env.get("/v1/overview", **RANGE)["alerts_firing"] == 1
    assert env.get("/v1/overview", env.b.member_key, **RANGE)["alerts_firing"] == 0
    support = env.api.staff_key("alias_support")
    staff = env.get(f"/v1/staff/orgs/{env.a.org_id}/overview", support, **RANGE)
    assert staff["alerts_firing"] == 1


def test_agents_detail_and_fleets(env: Env) -> None:
    page = env.get("/v1/agents", limit=3, **RANGE)
    rest = env.get("/v1/agents", limit=3, cursor=page["next_cursor"], **RANGE)
    rows = page["data"] + rest["data"]
    assert [a["agent_id"] for a in rows] == list(w.AGENTS)
    assert rest["next_cursor"] is None
    for a in rows:
        assert a["requests"] == len(env.spans(agent_id=a["agent_id"]))
        assert a["status"] == "offline"
    detail = env.get("/v1/agents/agent-1", step="1h", **RANGE)
    assert detail["level"] == "1h"
    assert sum(p["red"]["requests"] for p in detail["series"]) == len(env.spans(agent_id="agent-1"))
    fleets = {f["fleet_id"]: f for f in env.get("/v1/fleets")}
    assert fleets["fleet-a"]["agents"] == 2
    assert fleets[""]["agents"] == 1


def test_task_runs_and_detail(env: Env) -> None:
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {**RANGE, "sort": "cost", "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = env.get("/v1/task-runs", **params)
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    want = env.raw("SELECT task_run_id, cost_usd FROM task_runs WHERE org_id = :org")
    assert sorted(r["task_run_id"] for r in seen) == sorted(r["task_run_id"] for r in want)
    costs = [Decimal(r["cost_usd"]) for r in seen]
    assert costs == sorted(costs, reverse=True)
    run = want[0]
    detail = env.get(f"/v1/task-runs/{run['task_run_id']}")
    assert sum(Decimal(i["cost_usd"]) for i in detail["cost_items"]) == run["cost_usd"]


def test_costs(env: Env) -> None:
    got = env.get("/v1/costs", group_by=["model", "agent"], period="day", **RANGE)
    items = env.raw(
        "SELECT * FROM cost_line_items WHERE org_id = :org AND time >= :s AND time < :e",
        s=START,
        e=END,
    )
    assert Decimal(got["totals"]["cost_usd"]) == sum((i["cost_usd"] for i in items), Decimal(0))
    assert sum(Decimal(r["cost_usd"]) for r in got["data"]) == Decimal(got["totals"]["cost_usd"])
    assert got["totals"]["tokens_in"] == sum(i["tokens_in"] for i in items)
    csv = env.api.get(
        "/v1/costs",
        env.a.member_key,
        params={**RANGE, "group_by": "model"},
        headers={"Accept": "text/csv"},
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("period,model,provider")


def test_settings(env: Env) -> None:
    got = env.get("/v1/settings")
    assert got["plan"] == "pro"
    assert got["org_id"] == str(env.a.org_id)
    assert {r["data_class"] for r in got["retention"]} >= {"spans", "rollup_1m", "cost_line_items"}


def test_subsystem_views(env: Env) -> None:
    spans = env.spans()
    mosaic = env.get("/v1/mosaic", step="1h", **RANGE)
    routed = [s for s in spans if isinstance(s["attributes"].get("mosaic.routing.route"), str)]
    assert sum(r["decisions"] for r in mosaic["routes"]) == len(routed)
    handoffs = [s for s in spans if isinstance(s["attributes"].get("mosaic.handoff.to_agent"), str)]
    assert sum(e["handoffs"] for e in mosaic["edges"]) == len(handoffs)
    damn = env.get("/v1/damn", step="1h", **RANGE)
    assert damn["by_status"]["offline"] == 4
    beats = env.raw(
        "SELECT count(*) AS n FROM events WHERE org_id = :org AND event_type = 'damn.agent.heartbeat'"
    )
    assert sum(u["heartbeats"] for u in damn["uptime"]) == beats[0]["n"]
    uce = env.get("/v1/uce", step="1h", **RANGE)
    assert uce["overall"]["ops"] == sum(
        isinstance(s["attributes"].get("uce.operation.name"), str) for s in spans
    )


def test_query_post_get_and_csv(env: Env) -> None:
    body = {
        "family": "span_red",
        "measures": [
            {"field": "spans", "aggregation": "count"},
            {"field": "duration_ms", "aggregation": "p95"},
        ],
        "group_by": ["agent_id"],
        "filters": [{"dim": "agent_id", "op": "in", "values": ["agent-1", "agent-2"]}],
        **RANGE,
    }
    r = env.api.client.post("/v1/query", json=body, headers=env.api.headers(env.a.member_key))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["columns"] == ["agent_id", "count(spans)", "p95(duration_ms)"]
    assert got["levels"]
    for agent, n, q in got["rows"]:
        rows = env.spans(agent_id=agent)
        assert n == len(rows)
        assert near(q, p95([s["duration_ms"] for s in rows]))
    series = env.get("/v1/query", family="org_red", measure=["sum(spans)"], step="1h", **RANGE)
    assert series["levels"] == ["1h"]
    assert sum(r[1] for r in series["rows"]) == len(env.spans())
    fine = env.api.get(
        "/v1/query",
        env.a.member_key,
        params={
            "family": "org_red",
            "measure": "sum(spans)",
            "step": "1m",
            "start": (END - 24 * HOUR).isoformat(),
            "end": END.isoformat(),
        },
    )
    assert fine.status_code == 400
    assert "retention" in fine.json()["detail"]
    csv = env.api.get(
        "/v1/query",
        env.a.member_key,
        headers={"Accept": "text/csv"},
        params={"family": "org_red", "measure": "sum(spans)", **RANGE},
    )
    assert csv.text.splitlines() == ["sum(spans)", str(len(env.spans()))]


def test_events_search_and_tail(env: Env) -> None:
    page = env.get("/v1/events", limit=5, **RANGE)
    rest = env.get("/v1/events", limit=500, cursor=page["next_cursor"], **RANGE)
    events = env.raw("SELECT event_id FROM events WHERE org_id = :org")
    got = [e["event_id"] for e in page["data"] + rest["data"]]
    assert sorted(got) == sorted(e["event_id"].hex() for e in events)
    first = _sse(env, env.a.member_key, 3, since=START.isoformat())
    assert len(first) == 3
    more = _sse(env, env.a.member_key, len(events) - 3, last_event_id=first[-1][0])
    assert {e["event_id"] for _, e in first + more} == {e["event_id"].hex() for e in events}


def _sse(
    env: Env,
    key: str,
    n: int,
    org_path: str = "/v1",
    last_event_id: str | None = None,
    **params: Any,
) -> list[tuple[str, dict[str, Any]]]:
    import json

    headers = env.api.headers(key, **({"Last-Event-ID": last_event_id} if last_event_id else {}))
    out: list[tuple[str, dict[str, Any]]] = []
    with env.api.client.stream(
        "GET", f"{org_path}/events/stream", headers=headers, params=params, timeout=30
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        msg: dict[str, str] = {}
        for line in r.iter_lines():
            if line.startswith(("id: ", "data: ")):
                k, v = line.split(": ", 1)
                msg[k] = v
            elif line == "" and "data" in msg:
                out.append((msg["id"], json.loads(msg["data"])))
                msg = {}
                if len(out) >= n:
                    break
    return out


def test_staff_views(env: Env) -> None:
    support = env.api.staff_key("alias_support")
    spans = env.raw(
        "SELECT * FROM spans WHERE start_time >= :s AND start_time < :e", s=START, e=END
    )
    glob = env.get("/v1/staff/overview", support, **RANGE)
    assert glob["red"]["requests"] == len(spans)
    assert glob["orgs"] == 3
    orgs = env.get("/v1/staff/org-explorer", support, sort="requests", order="desc", **RANGE)[
        "data"
    ]
    assert [o["org_id"] for o in orgs[:2]] == [str(env.a.org_id), str(env.b.org_id)]
    assert orgs[0]["requests"] == sum(s["org_id"] == env.a.org_id for s in spans)
    failing = env.get("/v1/staff/fleet-explorer", support, **RANGE)["data"]
    for f in failing:
        rows = [
            s for s in spans if str(s["org_id"]) == f["org_id"] and s["agent_id"] == f["agent_id"]
        ]
        assert f["errors"] == sum(s["status_code"] == 2 for s in rows)
    health = env.get("/v1/staff/platform-health", support)
    assert health["relation_sizes"]["spans"] > 0
    # Any org's view, read-only, under the staff path.
    theirs = env.get(f"/v1/staff/orgs/{env.b.org_id}/overview", support, **RANGE)
    assert theirs["range"]["red"]["requests"] == len(env.spans(env.b.org_id))

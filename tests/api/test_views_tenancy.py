"""Tenancy of every view route: an org never sees another org's data, whatever it guesses.

Org A holds an agent, a task run, an event and a cost only it has ("secret-*"); org B
asks for them by id, crafts cursors, uses A's cursors, tails the event stream, and calls
A's staff path; staff keys are refused on nothing they may read, members on staff views,
ingest keys everywhere (403), unknown and revoked keys everywhere (401).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from storage import admin
from tests.api.conftest import RunningApi
from tests.api.test_views import END, RANGE, START, Env, _sse

VIEW_PATHS = [
    "/overview",
    "/settings",
    "/agents",
    "/agents/agent-1",
    "/fleets",
    "/task-runs",
    "/costs",
    "/mosaic",
    "/damn",
    "/uce",
    "/query/families",
    "/events",
]
STAFF_PATHS = [
    "/v1/staff/overview",
    "/v1/staff/org-explorer",
    "/v1/staff/fleet-explorer",
    "/v1/staff/platform-health",
]
SECRET_EVENT = "ab" * 16


@pytest.fixture
def env(api: RunningApi) -> Env:
    e = Env(api)
    t = START.replace(hour=12)
    with api.db.admin_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO agents (org_id, agent_id, status, last_seen_at) VALUES (:o, 'secret-agent', 'online', :t);"
            ),
            {"o": e.a.org_id, "t": t},
        )
        conn.execute(
            text(
                "INSERT INTO task_runs (org_id, task_run_id, status, started_at, cost_usd) "
                "VALUES (:o, 'secret-run', 'failed', :t, 42)"
            ),
            {"o": e.a.org_id, "t": t},
        )
        conn.execute(
            text(
                "INSERT INTO events (org_id, time, event_id, event_type, message, task_run_id) "
                "VALUES (:o, :t, decode(:id, 'hex'), 'secret', 'secret message', 'secret-run')"
            ),
            {"o": e.a.org_id, "t": t, "id": SECRET_EVENT},
        )
    return e


def _flat(value: Any) -> str:
    return repr(value)


def test_guessed_ids_are_not_found(env: Env) -> None:
    b = env.b.member_key
    for path in (
        "/v1/agents/secret-agent",
        "/v1/task-runs/secret-run",
        f"/v1/staff/orgs/{env.b.org_id}/task-runs/secret-run",
    ):
        key = env.api.staff_key("alias_support") if "staff" in path else b
        r = env.api.get(path, key, params=RANGE)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    # A sees its own.
    assert env.get("/v1/task-runs/secret-run")["run"]["cost_usd"] == "42.0000000000"


def test_no_view_shows_another_orgs_rows(env: Env) -> None:
    for path in VIEW_PATHS:
        got = _flat(env.get(f"/v1{path}", env.b.member_key, **RANGE))
        for secret in (
            "secret-agent",
            "secret-run",
            "secret message",
            SECRET_EVENT,
            str(env.a.org_id),
        ):
            assert secret not in got, path
        mine = _flat(env.get(f"/v1{path}", env.a.member_key, **RANGE))
        if path in ("/agents", "/task-runs", "/events"):
            assert "secret" in mine  # the probe is real: A does see it


def test_b_member_cannot_use_the_staff_path_or_staff_views(env: Env) -> None:
    for path in VIEW_PATHS:
        r = env.api.get(f"/v1/staff/orgs/{env.a.org_id}{path}", env.b.member_key, params=RANGE)
        assert r.status_code == 403, path
    for path in STAFF_PATHS:
        assert env.api.get(path, env.b.admin_key, params=RANGE).status_code == 403, path
    r = env.api.get(f"/v1/staff/orgs/{uuid.uuid4()}/overview", env.api.staff_key(), params=RANGE)
    assert r.status_code == 404


def test_cursors_cannot_be_crafted_or_carried_across_orgs(env: Env) -> None:
    a_page = env.get("/v1/task-runs", limit=1, **RANGE)
    cursor = a_page["next_cursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for path, token in (
        ("/v1/task-runs", tampered),
        ("/v1/events", "eyJ0IjoxfQ"),
        ("/v1/agents", cursor),
        ("/v1/events", cursor),
    ):
        r = env.api.get(path, env.b.member_key, params={**RANGE, "cursor": token})
        assert r.status_code == 400, (path, r.text)
        assert r.json()["type"].endswith("/invalid-cursor"), (path, r.text)
    # A's own valid cursor, replayed by B: B's rows only.
    r = env.api.get(
        "/v1/task-runs", env.b.member_key, params={**RANGE, "cursor": cursor, "limit": 500}
    )
    assert r.status_code == 200
    b_runs = {
        x["task_run_id"]
        for x in env.raw("SELECT task_run_id FROM task_runs WHERE org_id = :org", env.b.org_id)
    }
    assert {x["task_run_id"] for x in r.json()["data"]} <= b_runs


def test_event_stream_is_scoped(env: Env) -> None:
    b_events = env.raw("SELECT event_id FROM events WHERE org_id = :org", env.b.org_id)
    got = _sse(env, env.b.member_key, len(b_events), since=START.isoformat())
    assert {e["event_id"] for _, e in got} == {e["event_id"].hex() for e in b_events}
    # A's Last-Event-ID does not open A's stream to B.
    a_first = _sse(env, env.a.member_key, 1, since=START.isoformat())
    more = _sse(env, env.b.member_key, 1, last_event_id=a_first[0][0])
    assert all(e["event_id"] != SECRET_EVENT for _, e in more)
    staff = _sse(
        env,
        env.api.staff_key("alias_support"),
        1,
        org_path=f"/v1/staff/orgs/{env.a.org_id}",
        since=START.isoformat(),
    )
    assert staff
    r = env.api.client.get(
        f"/v1/staff/orgs/{env.a.org_id}/events/stream", headers=env.api.headers(env.b.member_key)
    )
    assert r.status_code == 403


def test_ingest_unknown_and_revoked_keys(env: Env) -> None:
    with env.api.db.admin_engine().begin() as conn:
        key = admin.create_key(conn, env.a.name, "member", "revoked")
        admin.revoke_key(conn, str(key.key_id))
    for path in [*(f"/v1{p}" for p in VIEW_PATHS), *STAFF_PATHS, "/v1/events/stream"]:
        assert env.api.get(path, env.a.ingest_key, params=RANGE).status_code == 403, path
        unknown = env.api.get(path, "aeos_mk_doesnotexist0000000000000000", params=RANGE)
        assert unknown.status_code == 401, path
        assert env.api.get(path, key.plaintext, params=RANGE).status_code == 401, path


def test_support_reads_every_org_view(env: Env) -> None:
    support = env.api.staff_key("alias_support")
    for path in VIEW_PATHS:
        r = env.api.get(f"/v1/staff/orgs/{env.a.org_id}{path}", support, params=RANGE)
        assert r.status_code == 200, (path, r.text)
    mine = env.get(f"/v1/staff/orgs/{env.a.org_id}/task-runs", support, limit=500, **RANGE)
    assert "secret-run" in {r["task_run_id"] for r in mine["data"]}
    assert END > START


def test_values_the_database_cannot_take_are_bad_input(env: Env) -> None:
    # NUL cannot be in a PostgreSQL text value: a client error (400), never a 500.
    for path, params in (
        ("/v1/task-runs", {"q": "a\x00b"}),
        ("/v1/agents", {"fleet_id": "\x00"}),
        ("/v1/events", {"agent_id": "x\x00"}),
        ("/v1/query", {"family": "span_red", "measure": "count(spans)", "filter": "agent_id=\x00"}),
    ):
        r = env.api.get(path, env.a.member_key, params={**RANGE, **params})
        assert r.status_code == 400, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")

"""The API's foundation over HTTP: who may ask, which transaction they get, error shapes.

Each probe route reports what the database itself says about the request's transaction
(current role, org setting, read-only), so these tests check the scoping, not our code's
idea of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from query_api.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from query_api.settings import ApiSettings
from storage import admin
from storage.database import Database
from storage.keys import parse_prefix
from tests.api._probe import PROBE_ROUTERS
from tests.api.conftest import RunningApi, start_api


@pytest.fixture
def probe(database: Database) -> Iterator[RunningApi]:
    """The API with the probe routes mounted (and a small rate limit)."""
    running = start_api(database, ApiSettings(rate_per_minute=60, rate_burst=30), PROBE_ROUTERS)
    try:
        yield running
    finally:
        running.stop()


def _problem(response: object, status: int, kind: str) -> dict[str, object]:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, object] = response.json()
    assert body["type"] == PROBLEM_BASE + kind
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


def test_who_may_ask(api: RunningApi) -> None:
    org = api.make_org()
    assert api.get("/v1/me", org.member_key).json()["role"] == "member"
    admin_me = api.get("/v1/me", org.admin_key).json()
    assert (admin_me["role"], admin_me["org_id"], admin_me["can_write_org"]) == (
        "admin",
        str(org.org_id),
        True,
    )
    support = api.get("/v1/me", api.staff_key("alias_support")).json()
    assert (support["is_staff"], support["can_write_org"]) == (True, False)
    assert api.get("/v1/me", api.staff_key("alias_admin")).json()["can_write_org"] is True

    _problem(api.get("/v1/me", org.ingest_key), 403, "forbidden")
    missing = api.client.get("/v1/me")
    _problem(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    _problem(api.get("/v1/me", "not-a-key"), 401, "unauthorized")
    _problem(api.get("/v1/me", org.member_key[:-3] + "xyz"), 401, "unauthorized")
    with api.db.admin_engine().begin() as conn:
        admin.revoke_key(conn, str(parse_prefix(org.member_key)))
    _problem(api.get("/v1/me", org.member_key), 401, "unauthorized")
    basic = api.client.get("/v1/me", headers={"Authorization": f"Basic {org.admin_key}"})
    _problem(basic, 401, "unauthorized")


def test_view_connection_is_the_tenant_of_the_credential_and_read_only(probe: RunningApi) -> None:
    org, other = probe.make_org(), probe.make_org()
    for key in (org.member_key, org.admin_key):
        seen = probe.get("/v1/probe/view", key).json()
        assert seen == {"role": "aeos_tenant", "org": str(org.org_id), "read_only": True}
    _problem(
        probe.client.post("/v1/probe/view-write", headers=probe.headers(org.admin_key)),
        403,
        "forbidden",
    )
    # Another org's id in the staff path is refused to a tenant, whatever it guesses.
    staff_path = f"/v1/staff/orgs/{other.org_id}/probe/view"
    _problem(probe.get(staff_path, org.admin_key), 403, "forbidden")
    _problem(
        probe.get(f"/v1/staff/orgs/{other.org_id}/probe/engine", org.admin_key), 403, "forbidden"
    )


def test_staff_read_any_org_through_the_staff_path(probe: RunningApi) -> None:
    org = probe.make_org()
    for role in ("alias_support", "alias_admin"):
        key = probe.staff_key(role)
        seen = probe.get(f"/v1/staff/orgs/{org.org_id}/probe/view", key).json()
        assert seen == {"role": "aeos_tenant", "org": str(org.org_id), "read_only": True}
        engine_seen = probe.get(f"/v1/staff/orgs/{org.org_id}/probe/engine", key).json()
        assert engine_seen["org"] == str(org.org_id)
        write = probe.client.post(
            f"/v1/staff/orgs/{org.org_id}/probe/view-write", headers=probe.headers(key)
        )
        _problem(write, 403, "forbidden")
    support = probe.staff_key("alias_support")
    _problem(probe.get(f"/v1/staff/orgs/{uuid.uuid4()}/probe/view", support), 404, "not-found")
    _problem(probe.get(f"/v1/staff/orgs/{uuid.uuid4()}/probe/engine", support), 404, "not-found")
    bad = _problem(probe.get("/v1/staff/orgs/not-a-uuid/probe/view", support), 422, "validation")
    assert bad["errors"] == [{"param": "org_id", "message": "not a UUID: 'not-a-uuid'"}]


def test_admin_connection_only_for_org_admins(probe: RunningApi) -> None:
    org = probe.make_org()
    seen = probe.get("/v1/probe/admin", org.admin_key).json()
    assert seen == {"role": "aeos_tenant", "org": str(org.org_id), "read_only": False}
    _problem(probe.get("/v1/probe/admin", org.member_key), 403, "forbidden")
    staff_path = f"/v1/staff/orgs/{org.org_id}/probe/admin"
    assert probe.get(staff_path, probe.staff_key("alias_admin")).json()["org"] == str(org.org_id)
    _problem(probe.get(staff_path, probe.staff_key("alias_support")), 403, "forbidden")
    _problem(probe.get(staff_path, org.admin_key), 403, "forbidden")


def test_staff_connections(probe: RunningApi) -> None:
    org = probe.make_org()
    support, alias_admin = probe.staff_key("alias_support"), probe.staff_key("alias_admin")
    for key in (support, alias_admin):
        seen = probe.get("/v1/probe/staff-read", key).json()
        assert seen == {"role": "aeos_support", "org": "", "read_only": True}
    assert probe.get("/v1/probe/staff-write", alias_admin).json()["role"] == "aeos_staff"
    _problem(probe.get("/v1/probe/staff-write", support), 403, "forbidden")
    for key in (org.admin_key, org.member_key):
        _problem(probe.get("/v1/probe/staff-read", key), 403, "forbidden")
        _problem(probe.get("/v1/probe/staff-write", key), 403, "forbidden")


def test_validation_errors_name_the_parameter(probe: RunningApi) -> None:
    key = probe.make_org().member_key
    cases = {
        "limit=0": "limit",
        "limit=501": "limit",
        "limit=ten": "limit",
        "start=yesterday": "start",
        "start=2026-12-01T00:00:00": "start",  # no offset: refused, never local time
        "end=99999999999999999": "end",
        "start=2026-12-02T00:00:00Z&end=2026-12-01T00:00:00Z": "end",
        "start=2020-01-01T00:00:00Z&end=2026-12-01T00:00:00Z": "start",  # over 400 days
    }
    for query, param in cases.items():
        body = _problem(probe.get(f"/v1/probe/rows?{query}", key), 422, "validation")
        errors = body["errors"]
        assert isinstance(errors, list)
        assert [e["param"] for e in errors] == [param], query
        assert param in str(body["detail"])
    ok = probe.get("/v1/probe/rows?start=1764547200000&end=2026-12-01T01:00:00%2B01:00", key)
    assert ok.status_code == 200, ok.text


def test_paging_and_tampered_cursors(probe: RunningApi) -> None:
    key = probe.make_org().member_key
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = probe.get("/v1/probe/rows", key, params=params).json()
        seen.extend(row["n"] for row in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(7))
    first = probe.get("/v1/probe/rows", key, params={"limit": "3"}).json()["next_cursor"]
    flipped = first[:5] + ("A" if first[5] != "A" else "B") + first[6:]
    for bad in (flipped, first[:-2], "x", "!!!", first + "AAAA"):
        _problem(probe.get("/v1/probe/rows", key, params={"cursor": bad}), 400, "invalid-cursor")


def test_csv_on_request(probe: RunningApi) -> None:
    key = probe.make_org().member_key
    response = probe.get(
        "/v1/probe/rows", key, params={"limit": "3"}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-next-cursor"]
    assert response.text.split("\r\n") == [
        "n,label,tags,note",
        '0,"row ""0"", ok","[""a"",""b""]",x',
        '1,"row ""1"", ok","[""a"",""b""]",',
        '2,"row ""2"", ok","[""a"",""b""]",x',
        "",
    ]
    as_json = probe.get("/v1/probe/rows", key, params={"limit": "2"}).json()
    assert as_json["data"][1] == {"n": 1, "label": 'row "1", ok', "tags": ["a", "b"], "note": None}


def test_rate_limit_per_credential(database: Database) -> None:
    # One token a minute: however slow the machine, the bucket cannot refill in the test.
    running = start_api(database, ApiSettings(rate_per_minute=1, rate_burst=3))
    try:
        org = running.make_org()
        statuses = [running.get("/v1/me", org.member_key).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = running.get("/v1/me", org.member_key)
        body = _problem(limited, 429, "rate-limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert "rate limit" in str(body["detail"])
        # Another credential of the same org has its own bucket.
        assert running.get("/v1/me", org.admin_key).status_code == 200
    finally:
        running.stop()


def test_unknown_routes_and_methods_are_problems(api: RunningApi) -> None:
    _problem(api.client.get("/v1/no-such-thing"), 404, "not-found")
    _problem(api.client.post("/healthz"), 405, "method-not-allowed")
    schema = api.client.get("/openapi.json").json()
    me = schema["paths"]["/v1/me"]["get"]
    assert set(me["responses"]) >= {"200", "401", "403", "429"}
    assert PROBLEM_MEDIA_TYPE in me["responses"]["401"]["content"]

"""``/v1/keys`` over HTTP: org admins manage their keys; nobody else does."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.api.conftest import RunningApi


def test_admin_creates_lists_and_revokes_keys(api: RunningApi) -> None:
    org = api.make_org()
    created = api.client.post(
        "/v1/keys", json={"role": "member", "name": " grafana "}, headers=api.headers(org.admin_key)
    )
    assert created.status_code == 201, created.text
    new = created.json()
    assert (new["role"], new["name"], new["org_id"]) == ("member", "grafana", str(org.org_id))
    assert new["key"].startswith(new["prefix"] + "_")
    # The secret works at once, as a member key of this org.
    me = api.get("/v1/me", new["key"]).json()
    assert (me["role"], me["org_id"]) == ("member", str(org.org_id))

    listed = api.get("/v1/keys", org.admin_key).json()
    assert listed["data"][0]["prefix"] == new["prefix"]  # newest first
    assert {k["role"] for k in listed["data"]} == {"ingest", "admin", "member"}
    assert all("key" not in k and "key_hash" not in k for k in listed["data"])

    revoked = api.client.delete(f"/v1/keys/{new['key_id']}", headers=api.headers(org.admin_key))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert api.get("/v1/me", new["key"]).status_code == 401
    again = api.client.delete(f"/v1/keys/{new['key_id']}", headers=api.headers(org.admin_key))
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    active = api.get("/v1/keys", org.admin_key, params={"include_revoked": "false"}).json()
    assert new["prefix"] not in [k["prefix"] for k in active["data"]]


def test_paging_through_keys(api: RunningApi) -> None:
    org = api.make_org()
    for i in range(4):
        body = {"role": "ingest", "name": f"k{i}"}
        api.client.post("/v1/keys", json=body, headers=api.headers(org.admin_key))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/keys", org.admin_key, params=params).json()
        seen.extend(k["key_id"] for k in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7  # 3 made with the org + 4
    csv = api.get("/v1/keys", org.admin_key, headers={"Accept": "text/csv"})
    assert csv.text.splitlines()[0].startswith("key_id,org_id,prefix,role")
    assert len(csv.text.splitlines()) == 8


def test_who_may_not_manage_keys(api: RunningApi) -> None:
    org, other = api.make_org(), api.make_org()
    support = api.staff_key("alias_support")
    body = {"role": "member"}
    for key in (org.member_key, support, api.staff_key("alias_admin")):
        assert api.get("/v1/keys", key).status_code == 403
        assert api.client.post("/v1/keys", json=body, headers=api.headers(key)).status_code == 403
    assert api.get("/v1/keys", org.ingest_key).status_code == 403
    staff_keys = f"/v1/staff/orgs/{org.org_id}/keys"
    assert api.get(staff_keys, support).status_code == 403
    assert api.client.post(staff_keys, json=body, headers=api.headers(support)).status_code == 403
    assert api.get(staff_keys, org.admin_key).status_code == 403
    # Another org's key cannot be revoked, even knowing its id.
    other_keys = api.get("/v1/keys", other.admin_key).json()["data"]
    for key in other_keys:
        response = api.client.delete(
            f"/v1/keys/{key['key_id']}", headers=api.headers(org.admin_key)
        )
        assert response.status_code == 404
    assert api.get("/v1/me", other.member_key).status_code == 200
    missing = api.client.delete(f"/v1/keys/{uuid.uuid4()}", headers=api.headers(org.admin_key))
    assert missing.status_code == 404


def test_no_staff_keys_through_the_org(api: RunningApi) -> None:
    org = api.make_org()
    for role in ("alias_admin", "alias_support", "root"):
        response = api.client.post(
            "/v1/keys", json={"role": role}, headers=api.headers(org.admin_key)
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["param"] == "role"
    # A staff key homed in the org is invisible and untouchable to its admins.
    with api.db.admin_engine().begin() as conn:
        staff_id = conn.execute(
            text(
                "INSERT INTO api_keys (org_id, prefix, key_hash, role) "
                "VALUES (:org, 'aeos_sa_HOMEDxx1', sha256('x'), 'alias_admin') RETURNING id"
            ),
            {"org": org.org_id},
        ).scalar_one()
    listed = api.get("/v1/keys", org.admin_key).json()["data"]
    assert str(staff_id) not in [k["key_id"] for k in listed]
    revoke = api.client.delete(f"/v1/keys/{staff_id}", headers=api.headers(org.admin_key))
    assert revoke.status_code == 404


def test_alias_admin_manages_any_org_under_the_staff_path(api: RunningApi) -> None:
    org = api.make_org()
    alias_admin = api.staff_key("alias_admin")
    path = f"/v1/staff/orgs/{org.org_id}/keys"
    created = api.client.post(path, json={"role": "ingest"}, headers=api.headers(alias_admin))
    assert created.status_code == 201, created.text
    assert created.json()["org_id"] == str(org.org_id)
    listed = api.get(path, alias_admin).json()["data"]
    assert created.json()["key_id"] in [k["key_id"] for k in listed]
    gone = api.client.delete(f"{path}/{created.json()['key_id']}", headers=api.headers(alias_admin))
    assert gone.status_code == 200
    assert api.get(f"/v1/staff/orgs/{uuid.uuid4()}/keys", alias_admin).status_code == 404

"""``aeos grafana provision`` and ``aeos dashboards export`` as a user runs them."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql
from sqlalchemy import text

from dashboards_json._gen import CLIENT_FOLDERS, DATASOURCE_UIDS, FOLDERS, build_all
from storage import admin
from storage.auth import authenticate
from storage.database import Database
from tests.integration.test_cli import _url, aeos


@pytest.fixture
def roles(database: Database) -> Iterator[list[str]]:
    """Login roles the test made (cluster-wide): dropped afterwards."""
    made: list[str] = []
    yield made
    info = database.admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(info, autocommit=True) as conn:
        for role in made:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _provision(database: Database, out: Path, *args: str) -> dict[str, Any]:
    result = aeos("grafana", "provision", "--out", str(out), *args, url=_url(database))
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _files(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    for path in (out / "datasources" / "aeos.yaml", out / "dashboards" / "aeos.yaml"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    ds = yaml.safe_load((out / "datasources" / "aeos.yaml").read_text())
    providers = yaml.safe_load((out / "dashboards" / "aeos.yaml").read_text())
    return ds, providers


def _key(ds: dict[str, Any]) -> str:
    jaeger = next(d for d in ds["datasources"] if d["type"] == "jaeger")
    assert jaeger["jsonData"]["httpHeaderName1"] == "Authorization"
    value: str = jaeger["secureJsonData"]["httpHeaderValue1"]
    assert value.startswith("Bearer ")
    return value.removeprefix("Bearer ")


def test_client_org_files_login_and_key(
    database: Database, tmp_path: Path, roles: list[str]
) -> None:
    with database.admin_engine().begin() as conn:
        org = admin.create_org(conn, "acme", "pro")
    args = ("--org", "acme", "--grafana-org-id", "3", "--db-host", "db:5432",
            "--jaeger-url", "http://api:8686/jaeger", "--dashboards-path", "/dash")  # fmt: skip
    first = _provision(database, tmp_path, *args)
    roles.append(first["login_role"])
    ds, providers = _files(tmp_path)
    assert {d["uid"] for d in ds["datasources"]} == set(DATASOURCE_UIDS)
    assert {d["orgId"] for d in ds["datasources"]} == {3}
    pg = next(d for d in ds["datasources"] if d["uid"] == "aeos-pg")
    assert (pg["url"], pg["user"]) == ("db:5432", first["login_role"])
    assert pg["jsonData"]["database"] == database.admin_url.database
    assert pg["jsonData"]["timescaledb"] is (first["timescaledb"])
    paths = {p["options"]["path"] for p in providers["providers"]}
    assert paths == {f"/dash/{folder}" for folder in CLIENT_FOLDERS}
    assert {p["orgId"] for p in providers["providers"]} == {3}
    # Every dashboard a client gets is in a provided folder; the console is not.
    provided = {p.split("/")[-1] for p in paths}
    assert {path.split("/")[0] for path in build_all()} - provided == {"console"}
    with database.admin_engine().begin() as conn:
        pinned = conn.execute(
            text("SELECT org_id FROM db_role_orgs WHERE role_name = :r"), {"r": pg["user"]}
        ).scalar()
        member = conn.execute(
            text("SELECT pg_has_role(:r, 'aeos_grafana_reader', 'USAGE'), "
                 "pg_has_role(:r, 'aeos_tenant', 'MEMBER')"), {"r": pg["user"]},
        ).one()  # fmt: skip
        identity = authenticate(conn, _key(ds))
    assert pinned == org.org_id
    assert tuple(member) == (True, False)  # read-only: not the API's tenant role
    assert identity is not None
    assert (identity.org_id, identity.role) == (org.org_id, "member")
    # Again: the same login with a new password, a new key, the old key revoked.
    old_key, old_password = _key(ds), pg["secureJsonData"]["password"]
    second = _provision(database, tmp_path, *args)
    ds2, _ = _files(tmp_path)
    pg2 = next(d for d in ds2["datasources"] if d["uid"] == "aeos-pg")
    assert second["login_role"] == first["login_role"]
    assert pg2["secureJsonData"]["password"] != old_password
    assert _key(ds2) != old_key
    with database.admin_engine().begin() as conn:
        assert authenticate(conn, old_key) is None
        assert authenticate(conn, _key(ds2)) is not None


def test_staff_files_read_every_org(database: Database, tmp_path: Path, roles: list[str]) -> None:
    with database.admin_engine().begin() as conn:
        admin.create_org(conn, "alias", "enterprise")
    summary = _provision(database, tmp_path, "--staff", "--org", "alias")
    roles.append(summary["login_role"])
    ds, providers = _files(tmp_path)
    assert {p["options"]["path"].rsplit("/", 1)[1] for p in providers["providers"]} == set(FOLDERS)
    with database.admin_engine().begin() as conn:
        support = conn.execute(
            text("SELECT pg_has_role(:r, 'aeos_support', 'USAGE')"), {"r": summary["login_role"]}
        ).scalar()
        pinned = conn.execute(
            text("SELECT count(*) FROM db_role_orgs WHERE role_name = :r"),
            {"r": summary["login_role"]},
        ).scalar()
        identity = authenticate(conn, _key(ds))
    assert support is True
    assert pinned == 0
    assert identity is not None
    assert identity.role == "alias_support"


def test_bad_requests_change_nothing(database: Database, tmp_path: Path) -> None:
    missing = aeos("grafana", "provision", "--out", str(tmp_path), url=_url(database))
    assert missing.returncode != 0
    assert "--org" in missing.stderr
    unknown = aeos("grafana", "provision", "--out", str(tmp_path), "--org", "nope",
                   url=_url(database))  # fmt: skip
    assert unknown.returncode != 0
    assert "nope" in unknown.stderr
    assert not any(tmp_path.iterdir())
    with database.admin_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM db_role_orgs")).scalar() == 0


def test_dashboards_export_writes_the_committed_json(tmp_path: Path) -> None:
    result = aeos("dashboards", "export", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.json"))
    assert written == sorted(build_all())
    board = json.loads((tmp_path / "client" / "org-overview.json").read_text())
    assert board["uid"] == "aeos-org-overview"

"""``aeos dashboards export`` and ``aeos grafana provision``.

Provisioning writes, for one Grafana org, a data source file (the PostgreSQL data source
``aeos-pg`` with the org's pinned read-only login, and the Jaeger data source
``aeos-jaeger`` on our ``/jaeger`` API with a read key of the org) and a dashboard provider
file (one provider per dashboard folder). The files hold secrets: they are written with
mode 0600 and belong outside the repository. They are JSON, which YAML parsers (Grafana's
included) read as YAML, so the runtime needs no YAML library.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from sqlalchemy import Connection, func, update
from sqlalchemy.engine import make_url

from dashboards_json._gen import CLIENT_FOLDERS, FOLDER_TITLES, FOLDERS, OUTPUT_DIR, export
from dashboards_json._gen.panels import JAEGER, PG
from query_api.settings import ApiSettings
from storage import admin, grafana
from storage.schema import api_keys
from storage.tenancy import DbRole, Scope, act_as

JAEGER_KEY_NAME: Final = "grafana-jaeger"
DEFAULT_DASHBOARDS_PATH: Final = "/var/lib/grafana/dashboards/aeos"

dashboards_app = typer.Typer(help="Grafana dashboards as JSON.", no_args_is_help=True)
grafana_app = typer.Typer(help="Grafana provisioning files per org.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Adds the ``dashboards`` and ``grafana`` command groups to the CLI."""
    app.add_typer(dashboards_app, name="dashboards")
    app.add_typer(grafana_app, name="grafana")


@dashboards_app.command("export")
def dashboards_export(
    out: Annotated[Path, typer.Option(help="Directory to write <folder>/<name>.json into.")] = (
        OUTPUT_DIR
    ),
) -> None:
    """Generate every dashboard's JSON (the committed files by default)."""
    for path in export(out):
        typer.echo(str(path))


def _write_secret(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode otherwise
        f.write("# Written by aeos grafana provision; holds secrets (mode 0600).\n")
        f.write(json.dumps(content, indent=2) + "\n")


def _escape(value: str) -> str:
    # Grafana expands $VAR in provisioning files; $$ is a literal dollar.
    return value.replace("$", "$$")


def _rotate_key(conn: Connection, org_id: uuid.UUID, org_name: str, role: str) -> str:
    """Revokes the org's previous Grafana keys and creates a new one (shown once)."""
    act_as(conn, Scope(DbRole.STAFF))
    conn.execute(
        update(api_keys)
        .where(api_keys.c.org_id == org_id, api_keys.c.name == JAEGER_KEY_NAME)
        .where(api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return admin.create_key(conn, org_name, role, JAEGER_KEY_NAME).plaintext


def datasources(
    grafana_org_id: int, login: grafana.GrafanaLogin, key: str, target: Target
) -> dict[str, Any]:
    """The data source provisioning file: the same uids in every Grafana org."""
    postgres = {
        "name": "AEOS database",
        "type": PG["type"],
        "uid": PG["uid"],
        "orgId": grafana_org_id,
        "access": "proxy",
        "url": target.db_host,
        "user": login.role,
        "secureJsonData": {"password": _escape(login.password)},
        "jsonData": {
            "database": target.db_name,
            "sslmode": target.sslmode,
            "postgresVersion": target.postgres_version,
            "timescaledb": target.timescaledb,
            "maxOpenConns": 10,
            "maxIdleConns": 10,
            "connMaxLifetime": 14400,
            "timeInterval": "1m",
        },
        "editable": False,
        "isDefault": True,
        "version": 1,
    }
    jaeger = {
        "name": "AEOS traces",
        "type": JAEGER["type"],
        "uid": JAEGER["uid"],
        "orgId": grafana_org_id,
        "access": "proxy",
        "url": target.jaeger_url,
        "jsonData": {
            "nodeGraph": {"enabled": True},
            "traceIdTimeParams": {"enabled": True},
            "spanBar": {"type": "Duration"},
            "httpHeaderName1": "Authorization",
        },
        "secureJsonData": {"httpHeaderValue1": _escape(f"Bearer {key}")},
        "editable": False,
        "version": 1,
    }
    return {"apiVersion": 1, "prune": True, "datasources": [postgres, jaeger]}


def providers(grafana_org_id: int, folders: tuple[str, ...], path: str) -> dict[str, Any]:
    """The dashboard provider file: one provider per folder of dashboards_json."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": f"aeos-{folder}",
                "orgId": grafana_org_id,
                "folder": FOLDER_TITLES[folder],
                "folderUid": f"aeos-{folder}",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": f"{path.rstrip('/')}/{folder}"},
            }
            for folder in folders
        ],
    }


@dataclass(frozen=True, slots=True)
class Target:
    """Where Grafana reaches the database and the Jaeger API, as Grafana sees them."""

    db_host: str
    db_name: str
    sslmode: str
    jaeger_url: str
    timescaledb: bool
    postgres_version: int


def _target(conn: Connection, url: str, db_host: str | None, jaeger_url: str | None,
            sslmode: str) -> Target:  # fmt: skip
    parsed = make_url(url)
    api = ApiSettings()
    return Target(
        db_host=db_host or f"{parsed.host or '127.0.0.1'}:{parsed.port or 5432}",
        db_name=parsed.database or "postgres",
        sslmode=sslmode,
        jaeger_url=jaeger_url or f"http://{api.host}:{api.port}/jaeger",
        timescaledb=grafana.storage_engine(conn) == "timescale",
        postgres_version=grafana.server_version_num(conn),
    )


def provision(
    conn: Connection,
    admin_url: str,
    out: Path,
    options: ProvisionOptions,
) -> dict[str, Any]:
    """Creates or rotates the login and key, writes both files; returns a summary."""
    target = _target(conn, admin_url, options.db_host, options.jaeger_url, options.sslmode)
    if options.staff:
        login = grafana.provision_staff_login(conn)
        key_org = options.org
        folders: tuple[str, ...] = tuple(FOLDERS)
        key_role = "alias_support"
    else:
        assert options.org is not None
        login = grafana.provision_org_login(conn, options.org)
        key_org, folders, key_role = options.org, CLIENT_FOLDERS, "member"
    key = ""
    if key_org is not None:
        key = _rotate_key(conn, admin.org_id_by_name(conn, key_org), key_org, key_role)
    ds_path = out / "datasources" / "aeos.yaml"
    provider_path = out / "dashboards" / "aeos.yaml"
    _write_secret(ds_path, datasources(options.grafana_org_id, login, key, target))
    _write_secret(
        provider_path, providers(options.grafana_org_id, folders, options.dashboards_path)
    )
    return {
        "login_role": login.role,
        "org_id": str(login.org_id) if login.org_id else None,
        "grafana_org_id": options.grafana_org_id,
        "folders": list(folders),
        "jaeger_key": bool(key),
        "timescaledb": target.timescaledb,
        "files": [str(ds_path), str(provider_path)],
    }


@dataclass(frozen=True, slots=True)
class ProvisionOptions:
    """What ``aeos grafana provision`` was asked for."""

    org: str | None
    staff: bool
    grafana_org_id: int
    db_host: str | None
    jaeger_url: str | None
    sslmode: str
    dashboards_path: str


@grafana_app.command("provision")
def grafana_provision(
    out: Annotated[Path, typer.Option(help="Grafana provisioning directory to write into.")],
    org: Annotated[
        str | None,
        typer.Option(help="The client org (or, with --staff, the org that owns the staff key)."),
    ] = None,
    staff: Annotated[bool, typer.Option(help="The ALIAS console: every org, read-only.")] = False,
    grafana_org_id: Annotated[int, typer.Option(min=1, help="The Grafana org (orgId).")] = 1,
    db_host: Annotated[
        str | None, typer.Option(help="host:port of the database as Grafana reaches it.")
    ] = None,
    jaeger_url: Annotated[
        str | None, typer.Option(help="Our /jaeger API as Grafana reaches it.")
    ] = None,
    sslmode: Annotated[str, typer.Option(help="disable, require, verify-ca or verify-full.")] = (
        "disable"
    ),
    dashboards_path: Annotated[
        str, typer.Option(help="Where Grafana finds dashboards_json/<folder>/.")
    ] = DEFAULT_DASHBOARDS_PATH,
) -> None:
    """Create or rotate an org's Grafana login and key; write data source and dashboard files."""
    from aeos import cli

    if not staff and org is None:
        cli._fail("give --org NAME (a client org) or --staff (the ALIAS console)")
    if sslmode not in ("disable", "require", "verify-ca", "verify-full"):
        cli._fail(f"unknown --sslmode {sslmode!r}")
    options = ProvisionOptions(
        org, staff, grafana_org_id, db_host, jaeger_url, sslmode, dashboards_path
    )
    with cli._database() as db, cli._storage_errors(), db.admin_engine().begin() as conn:
        url = db.admin_url.render_as_string(hide_password=True)
        summary = provision(conn, url, out, options)
    cli._print_json(summary)

"""Database logins for Grafana data sources: one read-only login pinned to each org.

Grafana runs whatever SQL a dashboard holds, so a data source's login must not be able to
read another org's rows or write anything, whatever the query says. An org's login is a
member of ``aeos_grafana_reader`` (read-only, migration 0015) and is listed in
``db_role_orgs``, which pins ``aeos_current_org()`` to that org for the whole session
(``aeos.org_id`` cannot change it); its search path puts the ``tenant`` views first, as
``act_as`` does for the API's tenants. The staff console's login is a member of
``aeos_support`` (every org, read-only).

Creating a login again rotates its password (the old one stops working at once), which
is how a leaked data-source secret is replaced. These functions take a transaction
opened by the database owner (they create roles), and commit nothing themselves.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, text

from storage.errors import NotFoundError

READER_ROLE: Final = "aeos_grafana_reader"
STAFF_LOGIN: Final = "aeos_grafana_staff"
ORG_LOGIN_PREFIX: Final = "aeos_grafana_org_"
STATEMENT_TIMEOUT: Final = "60s"
CONNECTION_LIMIT: Final = 20


@dataclass(frozen=True, slots=True)
class GrafanaLogin:
    """A login role and its new password (shown once, written into Grafana's files)."""

    role: str
    password: str
    org_id: uuid.UUID | None


def org_login_name(org_id: uuid.UUID) -> str:
    """The login of an org's data source: stable, so provisioning again rotates it."""
    return ORG_LOGIN_PREFIX + org_id.hex


def _org_id(conn: Connection, org_name: str) -> uuid.UUID:
    org_id: uuid.UUID | None = conn.execute(
        text("SELECT id FROM orgs WHERE name = :n"), {"n": org_name.strip()}
    ).scalar()
    if org_id is None:
        raise NotFoundError(f"no org named {org_name!r}")
    return org_id


def _ddl(conn: Connection, template: str, role: str, literal: str | None = None) -> None:
    # Identifiers and literals are quoted by the server (format %I / %L), not by us.
    statement = conn.execute(
        text("SELECT format(CAST(:t AS text), CAST(:r AS text), CAST(:l AS text))"),
        {"t": template, "r": role, "l": literal},
    ).scalar_one()
    conn.execute(text(statement))


def _upsert_login(conn: Connection, role: str, member_of: str, search_path: str) -> str:
    password = secrets.token_urlsafe(32)
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    verb = "ALTER" if exists else "CREATE"
    limit = f"CONNECTION LIMIT {CONNECTION_LIMIT}"
    _ddl(conn, f"{verb} ROLE %I LOGIN INHERIT {limit} PASSWORD %L", role, password)
    _ddl(conn, f"GRANT {member_of} TO %I", role)
    _ddl(conn, f"ALTER ROLE %I SET search_path = {search_path}", role)
    _ddl(conn, "ALTER ROLE %I SET statement_timeout = %L", role, STATEMENT_TIMEOUT)
    _ddl(conn, "ALTER ROLE %I SET default_transaction_read_only = on", role)
    return password


def provision_org_login(conn: Connection, org_name: str) -> GrafanaLogin:
    """Creates or rotates the read-only login pinned to the org named ``org_name``.

    Raises:
        NotFoundError: no such org.
    """
    org_id = _org_id(conn, org_name)
    role = org_login_name(org_id)
    conn.execute(
        text(
            "INSERT INTO db_role_orgs (role_name, org_id) VALUES (:r, :o) "
            "ON CONFLICT (role_name) DO UPDATE SET org_id = EXCLUDED.org_id"
        ),
        {"r": role, "o": org_id},
    )
    password = _upsert_login(conn, role, READER_ROLE, "tenant, public")
    return GrafanaLogin(role, password, org_id)


def provision_staff_login(conn: Connection, role: str = STAFF_LOGIN) -> GrafanaLogin:
    """Creates or rotates the staff console's login: every org, read-only."""
    conn.execute(text("DELETE FROM db_role_orgs WHERE role_name = :r"), {"r": role})
    password = _upsert_login(conn, role, "aeos_support", "public")
    return GrafanaLogin(role, password, None)


def storage_engine(conn: Connection) -> str:
    """``timescale`` or ``postgres``: Grafana's TimescaleDB option must match it."""
    value = conn.execute(text("SELECT value FROM aeos_meta WHERE key = 'storage_engine'")).scalar()
    return str(value or "postgres")


def server_version_num(conn: Connection) -> int:
    """The server's version as Grafana's ``postgresVersion`` wants it (1500 for 15.x)."""
    number = int(conn.execute(text("SHOW server_version_num")).scalar_one())
    return (number // 10000) * 100

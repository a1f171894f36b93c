"""Tenancy is enforced by the database: a tenant connection sees exactly one org."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from storage import admin, scoped_transaction
from storage.auth import AsyncKeyStore, KeyIdentity, authenticate
from storage.database import Database
from storage.errors import AccessDeniedError
from storage.tenancy import DbRole, Scope, act_as

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class TwoOrgs:
    a: admin.CreatedOrg
    b: admin.CreatedOrg


def _seed_telemetry(conn: Connection, org_id: uuid.UUID, tag: str) -> None:
    conn.execute(
        text(
            "INSERT INTO spans (org_id, trace_id, span_id, name, start_time, end_time, duration_ms) "
            "VALUES (:o, :t, :s, :n, :ts, :ts, 1.5)"
        ),
        {"o": org_id, "t": uuid.uuid4().bytes, "s": uuid.uuid4().bytes[:8], "n": tag, "ts": NOW},
    )
    conn.execute(
        text("INSERT INTO alert_rules (org_id, name, type) VALUES (:o, :n, 'threshold')"),
        {"o": org_id, "n": f"rule-{tag}"},
    )


@pytest.fixture
def two_orgs(database: Database) -> TwoOrgs:
    with scoped_transaction(database.admin_engine(), Scope(DbRole.STAFF)) as conn:
        a = admin.create_org(conn, "org-a", "pro")
        b = admin.create_org(conn, "org-b", "free")
        conn.execute(text("RESET ROLE"))  # the transaction acts as staff; seed as the owner
        _seed_telemetry(conn, a.org_id, "a")
        _seed_telemetry(conn, b.org_id, "b")
    return TwoOrgs(a, b)


@pytest.fixture
def app(database: Database) -> Iterator[Engine]:
    engine = database.app_engine()
    yield engine
    engine.dispose()


def test_tenant_reads_only_its_org_even_with_explicit_where(app: Engine, two_orgs: TwoOrgs) -> None:
    with app.begin() as conn:
        act_as(conn, Scope(DbRole.TENANT, two_orgs.a.org_id))
        assert conn.execute(text("SELECT name FROM spans")).scalars().all() == ["a"]
        other = {"o": two_orgs.b.org_id}
        assert (
            conn.execute(text("SELECT count(*) FROM spans WHERE org_id = :o"), other).scalar() == 0
        )
        assert (
            conn.execute(text("SELECT count(*) FROM alert_rules WHERE org_id = :o"), other).scalar()
            == 0
        )
        assert conn.execute(text("SELECT count(*) FROM orgs WHERE id = :o"), other).scalar() == 0
        assert (
            conn.execute(text("SELECT count(*) FROM api_keys WHERE org_id = :o"), other).scalar()
            == 0
        )
        assert conn.execute(text("SELECT name FROM orgs")).scalars().all() == ["org-a"]


def test_tenant_cannot_update_or_delete_another_orgs_rows(app: Engine, two_orgs: TwoOrgs) -> None:
    other = {"o": two_orgs.b.org_id}
    with app.begin() as conn:
        act_as(conn, Scope(DbRole.TENANT, two_orgs.a.org_id))
        updated = conn.execute(
            text("UPDATE alert_rules SET name = 'pwned' WHERE org_id = :o"), other
        )
        deleted = conn.execute(text("DELETE FROM alert_rules WHERE org_id = :o"), other)
        assert (updated.rowcount, deleted.rowcount) == (0, 0)
    with pytest.raises(ProgrammingError, match="row-level security"), app.begin() as conn:
        act_as(conn, Scope(DbRole.TENANT, two_orgs.a.org_id))
        conn.execute(
            text("INSERT INTO alert_rules (org_id, name, type) VALUES (:o, 'x', 'budget')"), other
        )
    with pytest.raises(ProgrammingError, match="permission denied"), app.begin() as conn:
        act_as(conn, Scope(DbRole.TENANT, two_orgs.a.org_id))
        conn.execute(text("DELETE FROM spans WHERE org_id = :o"), other)
    with app.begin() as conn:
        act_as(conn, Scope(DbRole.STAFF))
        names = conn.execute(text("SELECT name FROM alert_rules ORDER BY name")).scalars().all()
    assert names == ["rule-a", "rule-b"]


def test_tenant_cannot_move_its_rows_to_another_org(app: Engine, two_orgs: TwoOrgs) -> None:
    with pytest.raises(ProgrammingError, match="row-level security"), app.begin() as conn:
        act_as(conn, Scope(DbRole.TENANT, two_orgs.a.org_id))
        conn.execute(text("UPDATE alert_rules SET org_id = :o"), {"o": two_orgs.b.org_id})


def test_partitions_and_chunks_cannot_be_read_directly(
    app: Engine, two_orgs: TwoOrgs, database: Database
) -> None:
    with database.admin_engine().connect() as conn:
        children = (
            conn.execute(
                text(
                    "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'spans'::regclass"
                )
            )
            .scalars()
            .all()
        )
    assert children
    for child in children:
        with pytest.raises(ProgrammingError, match="permission denied"), app.begin() as conn:
            act_as(conn, Scope(DbRole.TENANT, two_orgs.a.org_id))
            conn.execute(text(f"SELECT count(*) FROM {child}"))


def test_the_app_login_has_no_privileges_of_its_own(app: Engine, two_orgs: TwoOrgs) -> None:
    with app.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "aeos_app"
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT count(*) FROM spans"))


def test_tenant_without_org_sees_nothing(app: Engine, two_orgs: TwoOrgs) -> None:
    with app.begin() as conn:
        conn.execute(text("SET LOCAL ROLE aeos_tenant"))
        conn.execute(text("SET LOCAL search_path = tenant, public"))
        assert conn.execute(text("SELECT count(*) FROM spans")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM orgs")).scalar() == 0


def test_scope_ends_with_the_transaction(app: Engine, two_orgs: TwoOrgs) -> None:
    with app.connect() as conn:
        with conn.begin():
            act_as(conn, Scope(DbRole.STAFF))
            assert conn.execute(text("SELECT count(*) FROM spans")).scalar() == 2
        assert conn.execute(text("SELECT current_user")).scalar() == "aeos_app"
        assert conn.execute(text("SELECT current_setting('aeos.org_id', true)")).scalar() in (
            "",
            None,
        )


def test_support_reads_all_orgs_and_writes_nothing(app: Engine, two_orgs: TwoOrgs) -> None:
    with app.begin() as conn:
        act_as(conn, Scope(DbRole.SUPPORT))
        assert conn.execute(text("SELECT count(*) FROM spans")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM orgs")).scalar() == 2
    statements = [
        "UPDATE alert_rules SET name = 'x'",
        "DELETE FROM notifications",
        "INSERT INTO orgs (name) VALUES ('sneaky')",
        "UPDATE api_keys SET revoked_at = now()",
    ]
    for statement in statements:
        with pytest.raises(ProgrammingError, match="permission denied"), app.begin() as conn:
            act_as(conn, Scope(DbRole.SUPPORT))
            conn.execute(text(statement))


def test_nobody_but_the_owner_reads_key_hashes(app: Engine, two_orgs: TwoOrgs) -> None:
    for scope in (
        Scope(DbRole.TENANT, two_orgs.a.org_id),
        Scope(DbRole.STAFF),
        Scope(DbRole.SUPPORT),
    ):
        with pytest.raises(ProgrammingError, match="permission denied"), app.begin() as conn:
            act_as(conn, scope)
            conn.execute(text("SELECT key_hash FROM api_keys"))


def test_pinned_login_role_cannot_escape_its_org(database: Database, two_orgs: TwoOrgs) -> None:
    """A Grafana data source role is pinned to one org; setting aeos.org_id changes nothing."""
    role = f"grafana_{uuid.uuid4().hex[:8]}"
    url = database.admin_url
    admin_info = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_info, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw' IN ROLE aeos_tenant").format(
                sql.Identifier(role)
            )
        )
        conn.execute(  # as a Grafana data source role is set up
            sql.SQL("ALTER ROLE {} SET search_path = tenant, public").format(sql.Identifier(role))
        )
        conn.execute(
            "INSERT INTO db_role_orgs (role_name, org_id) VALUES (%s, %s)",
            [role, two_orgs.a.org_id],
        )
    try:
        info = url.set(drivername="postgresql", username=role, password="pw").render_as_string(
            hide_password=False
        )
        with psycopg.connect(info) as conn:
            conn.execute("SET ROLE aeos_tenant")
            conn.execute("SELECT set_config('aeos.org_id', %s, false)", [str(two_orgs.b.org_id)])
            names = [r[0] for r in conn.execute("SELECT name FROM spans").fetchall()]
            assert names == ["a"]
            rows = conn.execute(
                "SELECT count(*) FROM spans WHERE org_id = %s", [two_orgs.b.org_id]
            ).fetchone()
            assert rows == (0,)
    finally:
        with psycopg.connect(admin_info, autocommit=True) as conn:
            conn.execute("DELETE FROM db_role_orgs WHERE role_name = %s", [role])
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_no_plaintext_key_is_stored(database: Database, two_orgs: TwoOrgs) -> None:
    secrets_ = [two_orgs.a.ingest_key.plaintext, two_orgs.a.admin_key.plaintext]
    with database.admin_engine().connect() as conn:
        dump = conn.execute(
            text("SELECT string_agg(to_jsonb(k)::text, ' ') FROM api_keys k")
        ).scalar()
        hashes = conn.execute(
            text("SELECT count(*) FROM api_keys WHERE octet_length(key_hash) = 32")
        ).scalar()
    assert dump is not None
    for secret in secrets_:
        secret_part = secret.rsplit("_", 1)[1] if secret.count("_") == 3 else secret[-43:]
        assert secret not in dump
        assert secret_part not in dump
    assert hashes == 4


def test_keys_authenticate_until_revoked(database: Database, two_orgs: TwoOrgs) -> None:
    app = database.app_engine()
    key = two_orgs.a.ingest_key
    with app.begin() as conn:
        identity = authenticate(conn, key.plaintext)
        assert identity is not None
        assert (identity.org_id, identity.role) == (two_orgs.a.org_id, "ingest")
        assert authenticate(conn, key.plaintext + "x") is None
        assert authenticate(conn, "Bearer nonsense") is None
    with scoped_transaction(database.admin_engine(), Scope(DbRole.STAFF)) as conn:
        admin.revoke_key(conn, str(key.key_id))
    with app.begin() as conn:
        assert authenticate(conn, key.plaintext) is None
    app.dispose()


def test_app_role_cannot_read_keys_without_the_function(app: Engine) -> None:
    with pytest.raises(DBAPIError, match="permission denied"), app.begin() as conn:
        act_as(conn, Scope(DbRole.INGEST))
        conn.execute(text("SELECT * FROM api_keys"))


def test_the_receiver_and_sync_callers_authenticate_keys_alike(
    database: Database, two_orgs: TwoOrgs
) -> None:
    """AsyncKeyStore.lookup and authenticate run one statement: the same answers."""
    presented = [
        two_orgs.a.ingest_key.plaintext,
        two_orgs.b.admin_key.plaintext,
        two_orgs.a.ingest_key.plaintext + "x",
        "aeos_ik_nonsense",
        "not a key",
    ]

    async def lookups() -> list[KeyIdentity | None]:
        store = AsyncKeyStore(database.app_conninfo())
        try:
            return [await store.lookup(k) for k in presented]
        finally:
            await store.close()

    via_receiver = asyncio.run(lookups())
    with database.app_engine().begin() as conn:
        via_sync = [authenticate(conn, k) for k in presented]
    assert via_receiver == via_sync
    assert [i.org_id if i else None for i in via_sync] == [
        two_orgs.a.org_id,
        two_orgs.b.org_id,
        None,
        None,
        None,
    ]
    assert [i.role if i else None for i in via_sync][:2] == ["ingest", "admin"]


@pytest.mark.parametrize("role", [DbRole.SUPPORT, DbRole.INGEST])
def test_admin_functions_never_switch_roles_themselves(
    database: Database, two_orgs: TwoOrgs, role: DbRole
) -> None:
    """Under a role that may not administer, administration fails instead of escalating."""
    with (
        pytest.raises(AccessDeniedError),
        scoped_transaction(database.app_engine(), Scope(role)) as conn,
    ):
        admin.create_key(conn, "org-a", "ingest", "should not exist")
    with scoped_transaction(database.app_engine(), Scope(DbRole.STAFF)) as conn:
        names = conn.execute(text("SELECT name FROM api_keys")).scalars().all()
    assert "should not exist" not in names

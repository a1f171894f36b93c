"""The scoped transaction: one role for the whole transaction, errors classified."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage import admin
from storage.database import Database
from storage.errors import AccessDeniedError, DatabaseUnavailableError
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction


def test_scope_holds_for_the_transaction_and_ends_with_it(database: Database) -> None:
    engine = database.app_engine()
    with scoped_transaction(database.admin_engine(), Scope(DbRole.STAFF)) as conn:
        org = admin.create_org(conn, "scoped-a")
    with scoped_transaction(engine, Scope(DbRole.TENANT, org.org_id)) as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == "aeos_tenant"
        assert conn.execute(text("SELECT current_setting('aeos.org_id')")).scalar_one() == str(
            org.org_id
        )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == "aeos_app"


def test_insufficient_privilege_is_access_denied(database: Database) -> None:
    engine = database.app_engine()
    with (
        pytest.raises(AccessDeniedError, match="access denied"),
        scoped_transaction(engine, Scope(DbRole.SUPPORT)) as conn,
    ):
        conn.execute(text("DELETE FROM orgs"))


def test_unreachable_server_is_unavailable(database: Database) -> None:
    url = database.admin_url.set(port=1, username="aeos_app", password="x")
    from sqlalchemy import create_engine

    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with (
            pytest.raises(DatabaseUnavailableError),
            scoped_transaction(engine, Scope(DbRole.SUPPORT)),
        ):
            pass
    finally:
        engine.dispose()

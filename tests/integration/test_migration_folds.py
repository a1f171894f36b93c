"""Migrations 0021 (folded coarse rollup levels) and 0022 (their views read the watermark
through a function), PostgreSQL engine: nothing readers see moves.

Rows written before it (a late hour and the current one, every level merged by the writer)
must read the same after it, through views now; the views over the old tables must keep
their names, columns, options and grants; and writes after it (late rows into the stores,
current rows into 1 min only), then a fold of everything, must leave every relation equal
to a database migrated straight to head that saw the same writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from storage import admin, scoped_transaction
from storage.database import Database
from storage.ingest.folds import FOLDS
from storage.jobs.rollup_folds import fold_rollups
from storage.migrate import StorageEngine
from storage.tenancy import DbRole, Scope
from tests._migrating import database_at, migrated_to
from tests.conftest import PgServer
from tests.integration import _rollup_reference as ref
from tests.integration.test_migration_quantiles import _VIEWS, MINUTE, _rows, _without_org, _write

pytestmark = pytest.mark.usefixtures("pg_server")

HOUR = 60 * MINUTE
_PRIVILEGES = """
SELECT r.rolname, has_table_privilege(r.rolname, :relation, 'SELECT')
  FROM pg_roles r WHERE r.rolname IN ('aeos_staff', 'aeos_support', 'aeos_tenant', 'aeos_worker')
 ORDER BY 1
"""


@pytest.fixture
def at_0020(
    empty_database: URL, engine_kind: StorageEngine, templates: Any, pg_server: PgServer
) -> Iterator[Database]:
    with database_at(empty_database, engine_kind, pg_server, "0020") as db:
        yield db


def _write_both(dbs: list[tuple[Database, Any]], batches: range, starts: list[int]) -> None:
    for db, org in dbs:
        for t0 in starts:
            _write(db, org, batches, t0)


def test_folding_migration_keeps_rollups_views_and_grants(
    at_0020: Database, database: Database, engine_kind: StorageEngine
) -> None:
    timescale = engine_kind is StorageEngine.TIMESCALE
    # A late hour (folded by the migration) and the current minute (read live after it).
    starts = [(time.time_ns() // HOUR - 2) * HOUR, (time.time_ns() // MINUTE - 3) * MINUTE]
    dbs = []
    for db in (at_0020, database):
        with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
            dbs.append((db, admin.create_org(conn, "m21", "pro").org_id))
    _write_both(dbs, range(3), starts)
    with at_0020.admin_engine().connect() as conn:
        before, views_before = _rows(conn, timescale), conn.execute(text(_VIEWS)).all()
    assert all(before.values())

    migrated_to(at_0020.admin_url, engine_kind, "0021")
    with at_0020.admin_engine().connect() as conn:
        _assert_close(_rows(conn, timescale), before)
        views_after = {v[0]: v for v in conn.execute(text(_VIEWS)).all()}
        assert [views_after[v[0]] for v in views_before] == views_before
        if not timescale:  # every folded level is a view now, tenants never read it
            for fold in FOLDS:
                assert fold.relation in {name.removeprefix("public.") for name in views_after}
                grants: dict[str, bool] = dict(
                    conn.execute(text(_PRIVILEGES), {"relation": fold.relation}).all()
                )
                assert grants == {"aeos_staff": True, "aeos_support": True,
                                  "aeos_tenant": False, "aeos_worker": True}  # fmt: skip

    migrated_to(at_0020.admin_url, engine_kind, "0022")  # the views read a stable function
    with at_0020.admin_engine().connect() as conn:
        _assert_close(_rows(conn, timescale), before)
        assert {v[0]: v for v in conn.execute(text(_VIEWS)).all()} == views_after

    _write_both(dbs, range(3, 6), starts)  # late rows into the stores, current into 1 min
    _assert_same(at_0020, database, timescale)
    for db, _ in dbs:  # a fold of everything changes no answer
        engine = db.app_engine(pool_size=1)
        try:
            result = fold_rollups(engine, datetime.now(UTC) + timedelta(days=2))
        finally:
            engine.dispose()
        assert timescale or set(result["folded"]) == {f.relation for f in FOLDS}
    _assert_same(at_0020, database, timescale)


def _assert_same(migrated: Database, fresh: Database, timescale: bool) -> None:
    with migrated.admin_engine().connect() as a, fresh.admin_engine().connect() as b:
        _assert_close(_without_org(_rows(a, timescale)), _without_org(_rows(b, timescale)))


def _assert_close(
    got: dict[str, list[dict[str, Any]]], want: dict[str, list[dict[str, Any]]]
) -> None:
    """Equal rows, floats to 1e-9 relative: a live 1 day row sums the hours' float sums, in
    another order than the writer summed them before."""
    assert got.keys() == want.keys()
    for name, rows in want.items():
        assert len(got[name]) == len(rows), name
        bad = [m for g, w in zip(got[name], rows, strict=True) for m in ref.mismatches(w, g)]
        assert not bad, (name, bad[:5])

"""Migrations 0019 and 0020 change how rollup percentiles are kept; nothing else moves.

0019 (PostgreSQL) drops and re-adds every p-column of the rollup tables as a cheaper
generated column; 0020 (PostgreSQL) drops them, the views over the tables computing them
instead; on TimescaleDB 0019 only replaces functions and 0020 does nothing. Rows written
before each must read the same afterwards (a table's percentiles as a reader computes
them, the views' columns as they were), the views keep their columns, options and grants,
and new writes after it must keep the rows equal to a database migrated straight to head.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from storage import admin, scoped_transaction
from storage.database import Database
from storage.ingest.rollups import cagg_refresh_order
from storage.ingest.rows import Batch, SpanRow
from storage.ingest.writer import IngestWriter
from storage.migrate import StorageEngine
from storage.schema import ROLLUP_TABLES
from storage.tenancy import DbRole, Scope
from tests._migrating import database_at, migrated_to
from tests.conftest import PgServer
from tests.integration import _rollup_reference as ref

pytestmark = pytest.mark.usefixtures("pg_server")

MINUTE = 60 * 10**9
QUANTILE_RELATIONS = [
    f"{family}_{level}"
    for family in ("org_red", "platform_red", "span_red", "uce_ops")
    for level in ("1d", "1h", "1m")
]
#: Every view: its name, options, grants and columns (0020 changes bodies, not these).
_VIEWS = """
SELECT format('%I.%I', n.nspname, c.relname), c.reloptions,
       ARRAY(SELECT format('%s %s', a.grantee::regrole, a.privilege_type)
               FROM aclexplode(c.relacl) a ORDER BY 1),
       ARRAY(SELECT format('%s %s', t.attname, format_type(t.atttypid, t.atttypmod))
               FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attnum > 0
              ORDER BY t.attnum)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'v' AND n.nspname IN ('public', 'tenant') ORDER BY 1
"""
_BODIES = """
SELECT format('%I.%I', n.nspname, c.relname), pg_get_viewdef(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'v' AND n.nspname IN ('public', 'tenant') ORDER BY 1
"""


def _spans(batch: int, t0: int) -> list[SpanRow]:
    out = []
    for i in range(40):
        start = t0 + (i % 3) * MINUTE + i * 1000
        out.append(
            SpanRow(
                trace_id=(batch * 1000 + i).to_bytes(16, "big"), span_id=i.to_bytes(8, "big"),
                parent_span_id=None, trace_state=None, name=f"op-{i % 2}", kind=1,
                start_ns=start, end_ns=start + (i * 7919 % 5000 + 1) * 10**5, status_code=0,
                status_message=None, subsystem="UCE", service_name="svc", agent_id=f"a{i % 3}",
                fleet_id=None, task_run_id=None, gen_ai_operation=None, gen_ai_provider=None,
                gen_ai_model=None, input_tokens=None, output_tokens=None, scope_name=None,
                attributes={"uce.operation.name": "read",
                            "uce.context.size_tokens": (i * 37) % 9000 + batch},
                resource_attributes={},
            )
        )  # fmt: skip
    return out


def _write(db: Database, org: uuid.UUID, batches: range, t0: int) -> None:
    async def run() -> None:
        writer = IngestWriter(db.app_conninfo(), flushers=1)
        await writer.start()
        try:
            for b in batches:
                await writer.write(Batch(org, spans=_spans(b, t0)))
        finally:
            await writer.close()

    asyncio.run(run())


def _rows(conn: Connection, timescale: bool) -> dict[str, list[dict[str, Any]]]:
    """Every row of the relations with p-columns, and of two ``*_levels`` views."""
    if timescale:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in cagg_refresh_order():
            conn.execute(text(f"CALL refresh_continuous_aggregate('{name}', NULL, NULL)"))
    out: dict[str, list[dict[str, Any]]] = {}
    for name in QUANTILE_RELATIONS:
        key = ROLLUP_TABLES[name].primary_key.columns.keys()
        rows = ref.actual(conn, name, tuple(key))  # stored or computed percentiles alike
        out[name] = [rows[k] for k in sorted(rows, key=lambda k: tuple(map(str, k)))]
    for family in ("span_red", "uce_ops"):
        found = conn.execute(text(f"SELECT * FROM {family}_levels")).mappings().all()
        out[f"{family}_levels"] = sorted(
            map(dict, found), key=lambda r: tuple(map(str, r.values()))
        )
    return out


def _without_org(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {
        n: [{k: v for k, v in r.items() if k != "org_id"} for r in rs] for n, rs in rows.items()
    }


#: (revision before, revision after, generated p-columns the PostgreSQL tables then have).
STEPS = [("0018", "0019", 3 * (3 * 3 + 2)), ("0019", "0020", 0)]


@pytest.fixture(params=STEPS, ids=lambda step: f"{step[0]}-{step[1]}")
def step(
    request: pytest.FixtureRequest,
    empty_database: URL,
    engine_kind: StorageEngine,
    templates: Any,
    pg_server: PgServer,
) -> Iterator[tuple[Database, str, int]]:
    before, after, generated = request.param
    with database_at(empty_database, engine_kind, pg_server, before) as db:
        yield db, after, generated


def test_quantile_migration_keeps_rollups_views_and_grants(
    step: tuple[Database, str, int], database: Database, engine_kind: StorageEngine
) -> None:
    db_before, revision, generated_after = step
    timescale = engine_kind is StorageEngine.TIMESCALE
    t0 = (time.time_ns() // (60 * MINUTE) - 2) * 60 * MINUTE  # 2 h ago, on the hour
    orgs = {}
    for db in (db_before, database):  # the same org name and writes in both databases
        with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
            orgs[id(db)] = admin.create_org(conn, "m19", "pro").org_id
        _write(db, orgs[id(db)], range(3), t0)
    with db_before.admin_engine().connect() as conn:
        before, views_before = _rows(conn, timescale), conn.execute(text(_VIEWS)).all()
        bodies_before = conn.execute(text(_BODIES)).all()
    assert all(before.values())
    migrated_to(db_before.admin_url, engine_kind, revision)
    with db_before.admin_engine().connect() as conn:
        assert _rows(conn, timescale) == before
        assert conn.execute(text(_VIEWS)).all() == views_before
        if not timescale:
            _assert_generated(conn, generated_after)
        if timescale or revision == "0019":  # 0020 computes the views' p-columns instead
            assert conn.execute(text(_BODIES)).all() == bodies_before
    for db in (db_before, database):  # more writes into the rows written before
        _write(db, orgs[id(db)], range(3, 6), t0)
    with db_before.admin_engine().connect() as a, database.admin_engine().connect() as b:
        migrated, fresh = _rows(a, timescale), _rows(b, timescale)
    assert _without_org(migrated) == _without_org(fresh)


def _assert_generated(conn: Connection, expected: int) -> None:
    generated = conn.execute(
        text(
            "SELECT table_name, column_name, generation_expression FROM "
            "information_schema.columns WHERE is_generated = 'ALWAYS' "
            "AND table_schema = 'public'"
        )
    ).all()
    assert len(generated) == expected
    assert all(g.generation_expression.startswith("aeos_hist_quantile_n(") for g in generated)
    assert {g.table_name for g in generated} <= set(QUANTILE_RELATIONS)

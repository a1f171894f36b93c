"""Migrations: the migrated schema equals the metadata, re-running changes nothing,
concurrent runs are safe, and the engine choice is honoured."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from storage.database import Database
from storage.errors import MigrationError
from storage.ingest.folds import FOLD_BY_RELATION
from storage.migrate import StorageEngine, migrate, recorded_engine
from storage.schema import FAMILIES, PARTITIONED, ROLLUP_TABLES, TENANT_TABLES, metadata
from storage.settings import EngineChoice
from tests.conftest import PgServer

pytestmark = pytest.mark.usefixtures("pg_server")


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # Partitions and default partitions are created by the service, not the metadata.
    if type_ == "table" and reflected and compare_to is None:
        return name not in {"alembic_version"} and not _is_partition(name or "")
    return True


def _is_partition(name: str) -> bool:
    return any(name.startswith(f"{t}_p") or name == f"{t}_default" for t in PARTITIONED)


def _is_timescale(conn: Connection) -> bool:
    return recorded_engine(conn) is StorageEngine.TIMESCALE


def schema_diff(conn: Connection) -> list[Any]:
    timescale = _is_timescale(conn)

    def include(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        # On TimescaleDB rollups are continuous aggregates: compared column by column.
        table = obj.table.name if type_ == "column" else name
        if timescale and table in ROLLUP_TABLES:
            return False
        return _include(obj, name, type_, reflected, other)

    ctx = MigrationContext.configure(
        conn,
        opts={"include_object": include, "compare_type": True, "compare_server_default": True},
    )
    return list(compare_metadata(ctx, metadata if timescale else _as_stored()))


def _as_stored() -> MetaData:
    """The metadata with each folded rollup level as the table that holds its rows (its
    store; the relation itself is a view on PostgreSQL, ``storage.ingest.folds``)."""
    stored = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        fold = FOLD_BY_RELATION.get(table.name)
        table.to_metadata(stored, name=fold.store if fold else None)
    return stored


def catalog_snapshot(conn: Connection) -> dict[str, list[Any]]:
    """Everything a migration could change: columns, indexes, policies, functions, grants."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
        "policies": "SELECT tablename, policyname, cmd, roles::text, qual, with_check "
        "FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2",
        "functions": "SELECT proname, md5(prosrc) FROM pg_proc "
        "WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
        "grants": "SELECT table_name, grantee, privilege_type FROM information_schema.role_table_grants "
        "WHERE table_schema = 'public' ORDER BY 1, 2, 3",
        "meta": "SELECT key, value FROM aeos_meta ORDER BY 1",
    }
    return {name: [tuple(r) for r in conn.execute(text(q))] for name, q in queries.items()}


def _connect(db: Database) -> Any:
    return db.admin_engine().connect()


def test_migrated_schema_equals_metadata(database: Database) -> None:
    with _connect(database) as conn:
        assert schema_diff(conn) == []


def test_rollup_relations_have_the_declared_columns(database: Database) -> None:
    """Same names, order and types on both engines (tables here, aggregates there); the
    aggregates also hold their percentiles (computed when read on PostgreSQL, 0020)."""
    with _connect(database) as conn:
        timescale = recorded_engine(conn) is StorageEngine.TIMESCALE
        for name, table in ROLLUP_TABLES.items():
            rows = conn.execute(
                text(
                    "SELECT column_name, format_type(atttypid, atttypmod) FROM "
                    "information_schema.columns c JOIN pg_attribute a ON a.attrelid = "
                    "('public.' || c.table_name)::regclass AND a.attname = c.column_name "
                    "WHERE c.table_schema = 'public' AND c.table_name = :t "
                    "ORDER BY c.ordinal_position"
                ),
                {"t": name},
            ).all()
            declared = [
                (c.name, c.type.compile(dialect=conn.dialect).lower()) for c in table.columns
            ]
            got = [
                (n, t.replace("timestamp with time zone", "timestamp with time zone"))
                for n, t in rows
            ]
            if timescale:
                quantiles = _percentile_columns(name)
                assert [(n, _norm(t)) for n, t in got if n in quantiles] == [
                    (n, "float8") for n in quantiles
                ], name
                got = [(n, t) for n, t in got if n not in quantiles]
            assert [(n, _norm(t)) for n, t in got] == [(n, _norm(t)) for n, t in declared], name


def _percentile_columns(relation: str) -> list[str]:
    family = next(f for f in FAMILIES for lv in f.levels if f.relation(lv) == relation)
    return [c for quantiles in family.quantiles for c, _ in quantiles.columns()]


def _norm(sql_type: str) -> str:
    return {
        "timestamp with time zone": "timestamptz",
        "double precision": "float8",
        "bigint": "int8",
        "bigint[]": "int8[]",
        "double precision[]": "float8[]",
        "uuid": "uuid",
    }.get(sql_type, sql_type)


def test_second_migrate_changes_nothing(database: Database, engine_kind: StorageEngine) -> None:
    with _connect(database) as conn:
        before = catalog_snapshot(conn)
    result = migrate(database.admin_url, EngineChoice(engine_kind.value))
    assert not result.changed
    assert result.engine is engine_kind
    with _connect(database) as conn:
        assert catalog_snapshot(conn) == before


def test_concurrent_migrations_on_a_fresh_database(empty_database: URL) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(empty_database, EngineChoice.POSTGRES))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.changed for r in results) == 1
    engine = create_engine(empty_database, poolclass=NullPool)
    with engine.connect() as conn:
        assert schema_diff(conn) == []
    engine.dispose()


def test_engine_is_recorded_and_cannot_change(
    database: Database, engine_kind: StorageEngine
) -> None:
    other = (
        EngineChoice.TIMESCALE if engine_kind is StorageEngine.POSTGRES else EngineChoice.POSTGRES
    )
    with pytest.raises(MigrationError, match="cannot be changed"):
        migrate(database.admin_url, other)


def test_timescale_forced_without_the_extension(empty_database: URL, pg_server: PgServer) -> None:
    if pg_server.timescale:
        pytest.skip("this server has timescaledb")
    with pytest.raises(MigrationError, match="no timescaledb extension"):
        migrate(empty_database, EngineChoice.TIMESCALE)
    engine = create_engine(empty_database, poolclass=NullPool)
    with engine.connect() as conn:  # nothing was created
        assert (
            conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname='public'")).scalar()
            == 0
        )
    engine.dispose()


def test_every_index_says_which_query_it_serves(database: Database) -> None:
    tables = [t.name for t in metadata.sorted_tables]
    with _connect(database) as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
                "WHERE t.relname = ANY(:tables) AND t.relnamespace = 'public'::regnamespace"
            ),
            {"tables": tables},
        ).all()
    assert len(rows) > 40
    missing = [name for name, comment in rows if not (comment or "").startswith("serves: ")]
    assert missing == []


def test_every_tenant_relation_is_guarded(database: Database) -> None:
    """Row-level security, or no tenant privilege at all plus a ``tenant.<name>`` view.

    TimescaleDB refuses row security on hypertables with continuous aggregates or the
    columnstore, and on the aggregates themselves; there the view is the only way in.
    """
    with _connect(database) as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, "
                "has_table_privilege('aeos_tenant', c.oid, 'SELECT'), "
                "to_regclass('tenant.' || c.relname) IS NOT NULL "
                "FROM pg_class c WHERE c.relname = ANY(:t) "
                "AND c.relnamespace = 'public'::regnamespace"
            ),
            {"t": [*TENANT_TABLES, "orgs", "model_prices"]},
        ).all()
    assert {r[0] for r in rows} == {*TENANT_TABLES, "orgs", "model_prices"}
    unguarded = [
        name for name, rls, tenant_reads, view in rows if not (rls or (not tenant_reads and view))
    ]
    assert unguarded == []


def test_raw_tables_are_partitioned_per_engine(
    database: Database, engine_kind: StorageEngine
) -> None:
    with _connect(database) as conn:
        if engine_kind is StorageEngine.TIMESCALE:
            rows = conn.execute(
                text(
                    "SELECT hypertable_name, column_name, time_interval FROM "
                    "timescaledb_information.dimensions WHERE hypertable_schema = 'public'"
                )
            ).all()
            found = {r[0]: (r[1], r[2]) for r in rows}
            assert found == {t: (s.time_column, s.interval) for t, s in PARTITIONED.items()}
        else:
            kinds = dict(
                conn.execute(
                    text(
                        "SELECT relname, relkind FROM pg_class WHERE relname = ANY(:t) "
                        "AND relnamespace = 'public'::regnamespace"
                    ),
                    {"t": list(PARTITIONED)},
                ).all()
            )
            assert kinds == {t: "p" for t in PARTITIONED}

"""``aeos migrate``: bring a database to the current schema, on either engine.

Safe to run from several processes at once: the whole upgrade happens while holding a
PostgreSQL advisory lock, so one process migrates and the others wait, then find nothing
to do. Idempotent: a second run changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from storage.errors import DatabaseUnavailableError, MigrationError
from storage.ingest.pricing import load_shipped_prices
from storage.settings import EngineChoice

_log = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x4145_4F53  # "AEOS"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: The engine a database was migrated for (no parameters: psycopg and SQLAlchemy alike).
STORAGE_ENGINE = "SELECT value FROM aeos_meta WHERE key = 'storage_engine'"
_META_EXISTS = "SELECT to_regclass('public.aeos_meta') IS NOT NULL"


class StorageEngine(StrEnum):
    """The engine a database was migrated for (stored in ``aeos_meta``)."""

    TIMESCALE = "timescale"
    POSTGRES = "postgres"


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """What a migration run found and did."""

    engine: StorageEngine
    from_revision: str | None
    to_revision: str | None

    @property
    def changed(self) -> bool:
        """Whether any migration step ran."""
        return self.from_revision != self.to_revision


def alembic_config(
    connection: Connection | None = None, engine: StorageEngine | None = None
) -> Config:
    """An Alembic config for our migrations, bound to ``connection`` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    cfg.attributes["storage_engine"] = engine
    return cfg


def migrate(
    url: URL, choice: EngineChoice = EngineChoice.AUTO, revision: str = "head"
) -> MigrationResult:
    """Upgrades the database at ``url`` (an admin/owner URL) to the newest schema
    (or to ``revision``: tests of a migration start from the one before it).

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        MigrationError: the engine asked for is not available or contradicts the one the
            database was set up with, or a migration step failed.
    """
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                return _migrate_locked(conn, choice, revision)
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot reach the database: {exc.orig}") from None
    except DBAPIError as exc:
        raise MigrationError(f"migration failed: {exc.orig}") from exc
    finally:
        engine.dispose()


def _migrate_locked(conn: Connection, choice: EngineChoice, revision: str) -> MigrationResult:
    storage_engine = _choose_engine(conn, choice)
    before = MigrationContext.configure(conn).get_current_revision()
    conn.commit()
    command.upgrade(alembic_config(conn, storage_engine), revision)
    conn.commit()
    prices = load_shipped_prices(conn)
    conn.commit()
    if prices:
        _log.info("loaded %d shipped model prices", prices)
    after = MigrationContext.configure(conn).get_current_revision()
    conn.commit()
    if before != after:
        _log.info("migrated %s -> %s on the %s engine", before, after, storage_engine)
    return MigrationResult(storage_engine, before, after)


def recorded_engine(conn: Connection) -> StorageEngine | None:
    """The engine this database was migrated for, or None if it never was.

    The one lookup of ``aeos_meta.storage_engine``: the migrations, ``Database``, the
    jobs, retention and ``/readyz`` call it; the async ingest writer runs
    :data:`STORAGE_ENGINE` (it has no SQLAlchemy connection).
    """
    exists = conn.execute(text(_META_EXISTS)).scalar_one()
    if not exists:
        return None
    return engine_of(conn.execute(text(STORAGE_ENGINE)).scalar())


def engine_of(value: object) -> StorageEngine | None:
    """The engine an ``aeos_meta.storage_engine`` value names (None: not recorded)."""
    return StorageEngine(str(value)) if value else None


def timescale_available(conn: Connection) -> bool:
    """Whether the server offers the timescaledb extension and has it preloaded."""
    offered = conn.execute(
        text("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).scalar_one()
    preload = conn.execute(text("SHOW shared_preload_libraries")).scalar_one()
    return bool(offered) and "timescaledb" in str(preload)


def _choose_engine(conn: Connection, choice: EngineChoice) -> StorageEngine:
    recorded = recorded_engine(conn)
    if recorded is not None:
        if choice not in (EngineChoice.AUTO, EngineChoice(recorded.value)):
            raise MigrationError(
                f"AEOS_STORAGE_ENGINE={choice} but this database was set up for the "
                f"{recorded} engine; an engine cannot be changed in place"
            )
        return recorded
    available = timescale_available(conn)
    if choice is EngineChoice.TIMESCALE and not available:
        raise MigrationError(
            "AEOS_STORAGE_ENGINE=timescale but the server has no timescaledb extension "
            "in shared_preload_libraries"
        )
    if choice is EngineChoice.POSTGRES or not available:
        return StorageEngine.POSTGRES
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    conn.commit()
    return StorageEngine.TIMESCALE

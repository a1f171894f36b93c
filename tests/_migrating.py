"""Migrating a test database to a given revision (tests of what a migration keeps)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import URL

from storage.database import Database
from storage.errors import MigrationError
from storage.migrate import StorageEngine, migrate
from storage.settings import EngineChoice
from tests._tsdb_jobs import unschedule_every_job
from tests.conftest import TEST_APP_PASSWORD, PgServer


def migrated_to(url: URL, engine: StorageEngine, revision: str) -> None:
    """Migrates ``url`` to ``revision``; on TimescaleDB no policy then runs on its own."""
    for attempt in range(3):  # roles are cluster-wide: another worker's ALTER ROLE can
        try:  # collide with this migration's ("tuple concurrently updated"); steps are
            migrate(url, EngineChoice(engine.value), revision)  # transactional: retry
            break
        except MigrationError as exc:
            if "concurrently updated" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.5)
    if engine is StorageEngine.TIMESCALE:
        unschedule_every_job(url.set(drivername="postgresql").render_as_string(False))


def set_app_password(url: URL) -> None:
    """Gives the app login the test password (a database migrated here, not a template:
    run alone, or first, such a test would find none and its writer could not log in)."""
    admin_conninfo = url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        for attempt in range(3):  # another worker's ALTER ROLE can collide with this one
            try:
                conn.execute(
                    psycopg.sql.SQL("ALTER ROLE aeos_app LOGIN PASSWORD {}").format(
                        psycopg.sql.Literal(TEST_APP_PASSWORD)
                    )
                )
                return
            except psycopg.errors.InternalError:
                if attempt == 2:
                    raise
                time.sleep(0.5)


@contextlib.contextmanager
def database_at(
    url: URL, engine: StorageEngine, pg_server: PgServer, revision: str
) -> Iterator[Database]:
    """The empty database ``url`` migrated to ``revision``, its app login usable."""
    if engine is StorageEngine.TIMESCALE and not pg_server.timescale:
        pytest.skip("the test server has no timescaledb (set AEOS_TEST_DATABASE_URL)")
    migrated_to(url, engine, revision)
    set_app_password(url)
    db = Database(url, TEST_APP_PASSWORD)
    try:
        yield db
    finally:
        db.close()

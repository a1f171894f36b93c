"""Test harness: a real PostgreSQL for the whole run, a fresh database for each test.

The server is the embedded one (started here, in a temporary directory, on a free port),
or the one ``AEOS_TEST_DATABASE_URL`` names (a superuser URL; use it for a server with
TimescaleDB). Each engine the server supports gets a template database migrated once per
run; each test gets a clone of it (``CREATE DATABASE ... TEMPLATE``), which takes tens of
milliseconds, and it is dropped afterwards.

TimescaleDB runs background jobs (refresh and columnstore policies) on a timer, so a test
could pass or fail depending on whether one happened to run. Here none runs on its own
(the template has every job unscheduled). A test that uses the ``background_jobs``
fixture (retention, sampling, rollups, late ingest: ``pytestmark =
pytest.mark.usefixtures("background_jobs")``) runs twice on TimescaleDB, in two states
(the ``job_state`` parameter; ids ``jobs-idle`` and ``jobs-ran``): before any policy has
run, and after every job of the database has been run to completion. Tests mark the moment the jobs may have run with ``settle(db)`` (after seeding, before acting;
several times if they like): in ``jobs-ran`` every job of the database then runs to
completion (a job that fails fails the test), in ``jobs-idle`` the harness checks that
none has run. The same assertions hold in both states.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from storage.database import APP_ROLE, Database
from storage.embedded import EmbeddedPostgres, free_port
from storage.errors import MigrationError
from storage.migrate import StorageEngine, migrate, timescale_available
from storage.settings import EngineChoice, parse_database_url
from tests._tsdb_jobs import (
    assert_no_job_ran,
    run_every_job,
    settle_template,
    unschedule_every_job,
)

TEST_APP_PASSWORD = "aeos-test-app-password"
FAST_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass(frozen=True)
class PgServer:
    """The PostgreSQL server of this test run."""

    admin_url: URL
    timescale: bool

    def conninfo(self, database: str | None = None) -> str:
        """A libpq URL (for psycopg) to ``database`` on this server."""
        url = self.admin_url.set(database=database) if database else self.admin_url
        return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(server: PgServer) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.conninfo(), autocommit=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The PostgreSQL server for the whole run."""
    raw = os.environ.get("AEOS_TEST_DATABASE_URL")
    embedded: EmbeddedPostgres | None = None
    # Not under pytest's basetemp: another pytest session on the machine prunes old
    # basetemp directories, and must never delete a running server's data.
    holder = tempfile.TemporaryDirectory(prefix="aeos-test-pg-")
    if raw:
        url = parse_database_url(raw)
    else:
        embedded = EmbeddedPostgres(Path(holder.name), free_port(), FAST_SERVER_SETTINGS)
        url = embedded.start()
    try:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        engine = create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            has_timescale = timescale_available(conn)
        engine.dispose()
        yield PgServer(url, has_timescale)
    finally:
        if embedded is not None:
            embedded.stop()
        holder.cleanup()


ENGINES = [
    pytest.param(StorageEngine.POSTGRES, id="postgres"),
    pytest.param(StorageEngine.TIMESCALE, id="timescale", marks=pytest.mark.timescale),
]


@pytest.fixture(scope="session")
def templates(pg_server: PgServer) -> Iterator[dict[StorageEngine, str]]:
    """Migrated template databases, one per engine, created on first use."""
    made: dict[StorageEngine, str] = {}
    yield made
    with _admin(pg_server) as conn:
        for name in made.values():
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _migrate_template(url: URL, engine: StorageEngine) -> None:
    # Parallel test workers migrate their templates at once; roles are cluster-wide, and
    # two ALTER ROLE of the same role can collide ("tuple concurrently updated"). Each
    # migration step is transactional, so trying again is safe.
    for attempt in range(3):
        try:
            migrate(url, EngineChoice(engine.value))
            return
        except MigrationError as exc:
            if "concurrently updated" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.5 + random.random())


def _template(
    pg_server: PgServer, templates: dict[StorageEngine, str], engine: StorageEngine
) -> str:
    if engine is StorageEngine.TIMESCALE and not pg_server.timescale:
        pytest.skip("the test server has no timescaledb (set AEOS_TEST_DATABASE_URL)")
    if engine not in templates:
        name = f"aeos_tmpl_{engine}_{uuid.uuid4().hex[:8]}"
        create_database(pg_server, name)
        _migrate_template(pg_server.admin_url.set(database=name), engine)
        with _admin(pg_server) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(TEST_APP_PASSWORD)
                )
            )
            # TimescaleDB's job scheduler keeps a session on every database with the
            # extension, and a template must have none: stop it, then close the door.
            # Its clones must not run jobs on their own either (see the module docstring).
            if engine is StorageEngine.TIMESCALE:
                unschedule_every_job(pg_server.conninfo(name))
                with psycopg.connect(pg_server.conninfo(name), autocommit=True) as tmpl:
                    tmpl.execute("SELECT _timescaledb_functions.stop_background_workers()")
                settle_template(pg_server.conninfo(name))
            conn.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
            )
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
            )
        templates[engine] = name
    return templates[engine]


def create_database(server: PgServer, name: str, template: str | None = None) -> None:
    """Creates an empty database, or a clone of ``template``."""
    with _admin(server) as conn:
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )


def drop_database(server: PgServer, name: str) -> None:
    """Drops a database, disconnecting whoever is still on it."""
    with _admin(server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(params=ENGINES)
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    """Each storage engine the test server supports (the conformance suite runs on all)."""
    kind: StorageEngine = request.param
    return kind


JOBS_IDLE = "jobs-idle"
JOBS_RAN = "jobs-ran"


@pytest.fixture(scope="module", params=[JOBS_IDLE, JOBS_RAN])
def job_state(request: pytest.FixtureRequest) -> str:
    """Whether TimescaleDB's jobs have not run at all, or have all run to completion."""
    state: str = request.param
    return state


@dataclass(frozen=True)
class BackgroundJobs:
    """The TimescaleDB jobs of the test's databases, in the test's ``job_state``."""

    server: PgServer
    state: str

    def settle(self, db: Database | Engine | str) -> None:
        """The moment the jobs may have run: in ``jobs-ran`` run them all, to completion;
        in ``jobs-idle`` check that none ran. Nothing on the PostgreSQL engine.

        ``db``: a database, an engine on it, or its name.
        """
        name = _name(db)
        conninfo = self.server.conninfo(name)
        if not _has_timescale(conninfo):
            return
        if self.state == JOBS_RAN:
            run_every_job(conninfo)
        else:
            assert_no_job_ran(conninfo, CREATED_AT[name])


#: The job state of each database a fixture made (by name), for :func:`settle`.
_JOBS_OF: dict[str, BackgroundJobs] = {}


def settle(db: Database | Engine | str) -> None:
    """``background_jobs.settle(db)`` for a database made by the ``database`` fixture (or
    registered with :func:`track_jobs`), from any helper that has the database or an
    engine on it; nothing for one that is not tracked."""
    jobs = _JOBS_OF.get(_name(db))
    if jobs is not None:
        jobs.settle(db)


@contextlib.contextmanager
def track_jobs(db: Database, jobs: BackgroundJobs) -> Iterator[Database]:
    """Lets :func:`settle` find ``db``'s job state while the block runs."""
    _JOBS_OF[_name(db)] = jobs
    try:
        yield db
    finally:
        _JOBS_OF.pop(_name(db), None)


def _name(db: Database | Engine | str) -> str:
    if isinstance(db, str):
        return db
    url = db.url if isinstance(db, Engine) else db.admin_url
    return url.database or ""


def _has_timescale(conninfo: str) -> bool:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
        return bool(row.fetchone()[0])  # type: ignore[index]


@pytest.fixture(scope="module")
def background_jobs(pg_server: PgServer, job_state: str) -> BackgroundJobs:
    """Runs (or checks idle) the TimescaleDB jobs of a database: ``settle(db)``."""
    return BackgroundJobs(pg_server, job_state)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``jobs-ran`` state only for TimescaleDB tests that use ``background_jobs``
    (elsewhere it would be the same test again)."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        params = getattr(item, "callspec", None)
        ran = params is not None and params.params.get("job_state") == JOBS_RAN
        wanted = item.get_closest_marker("timescale") is not None and "background_jobs" in getattr(
            item, "fixturenames", ()
        )
        (drop if ran and not wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


#: When each database of this run was created (by the server's clock).
CREATED_AT: dict[str, datetime] = {}


@contextlib.contextmanager
def fresh_database(
    pg_server: PgServer, templates: dict[StorageEngine, str], engine: StorageEngine
) -> Iterator[Database]:
    """A fresh migrated database on ``engine`` (several per test, e.g. per example)."""
    template = _template(pg_server, templates, engine)
    name = f"aeos_test_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        assert isinstance(row[0], datetime)
        CREATED_AT[name] = row[0]
    create_database(pg_server, name, template)
    db = Database(pg_server.admin_url.set(database=name), TEST_APP_PASSWORD)
    try:
        yield db
    finally:
        db.close()
        drop_database(pg_server, name)


@pytest.fixture
def database(
    request: pytest.FixtureRequest,
    pg_server: PgServer,
    templates: dict[StorageEngine, str],
    engine_kind: StorageEngine,
) -> Iterator[Database]:
    """A fresh migrated database for one test, on each engine the server supports (and
    in each job state, for a test that uses ``background_jobs``: see :func:`settle`)."""
    with fresh_database(pg_server, templates, engine_kind) as db:
        if "background_jobs" not in request.fixturenames:
            yield db
            return
        with track_jobs(db, request.getfixturevalue("background_jobs")):
            yield db


@pytest.fixture
def empty_database(pg_server: PgServer) -> Iterator[URL]:
    """A fresh, empty (unmigrated) database; yields its admin URL."""
    name = f"aeos_empty_{uuid.uuid4().hex[:12]}"
    create_database(pg_server, name)
    try:
        yield pg_server.admin_url.set(database=name)
    finally:
        drop_database(pg_server, name)

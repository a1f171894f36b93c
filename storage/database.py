"""Opening the database the settings name: an external server, or the embedded one.

``open_database`` returns a :class:`Database` with two ways in:
- ``admin_engine()``: the admin login (migrations, the CLI's administration);
- ``app_engine()``: the least-privilege ``aeos_app`` login the running service uses.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from storage.embedded import EmbeddedPostgres
from storage.errors import DatabaseUnavailableError
from storage.migrate import MigrationResult, StorageEngine, migrate, recorded_engine
from storage.settings import StorageSettings

_log = logging.getLogger(__name__)

APP_ROLE = "aeos_app"
EMBEDDED_DATABASE = "aeos"
CONNECT_TIMEOUT_S = 10


@dataclass
class Database:
    """A database the service can use, and how to log in to it."""

    admin_url: URL
    app_password: str | None
    pool_size: int = 10
    embedded: EmbeddedPostgres | None = None
    migration: MigrationResult | None = None
    _engines: list[Engine] = field(default_factory=list, repr=False)

    def admin_engine(self, **kwargs: Any) -> Engine:
        """An engine on the admin login (no pool unless asked)."""
        kwargs.setdefault("poolclass", NullPool)
        return self._track(create_engine(self.admin_url, **_connect_args(), **kwargs))

    def app_engine(self, **kwargs: Any) -> Engine:
        """An engine on the ``aeos_app`` login (no table privileges until ``act_as``).

        Without an app password (an external database where ``AEOS_APP_DB_PASSWORD`` is
        unset) it logs in as the admin and switches to ``aeos_app`` at connect time.
        """
        kwargs.setdefault("pool_size", self.pool_size)
        kwargs.setdefault("pool_pre_ping", True)
        if self.app_password is not None:
            url = self.admin_url.set(username=APP_ROLE, password=self.app_password)
            return self._track(create_engine(url, **_connect_args(), **kwargs))
        engine = create_engine(self.admin_url, **_connect_args(), **kwargs)

        @event.listens_for(engine, "connect")
        def _become_app(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET ROLE {APP_ROLE}")
            dbapi_conn.commit()

        return self._track(engine)

    def app_conninfo(self) -> str:
        """A libpq URL for raw psycopg connections of the service (the ingest writer).

        Such connections must ``SET ROLE`` before touching tables, as ``act_as`` does.
        """
        url = self.admin_url
        if self.app_password is not None:
            url = url.set(username=APP_ROLE, password=self.app_password)
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def engine_kind(self) -> StorageEngine:
        """The storage engine this database was migrated for."""
        with self.admin_engine().connect() as conn:
            kind = recorded_engine(conn)
        if kind is None:
            raise DatabaseUnavailableError("the database has not been migrated; run `aeos migrate`")
        return kind

    def close(self) -> None:
        """Disposes of every engine and stops the embedded server, if we started it."""
        for engine in self._engines:
            engine.dispose()
        self._engines.clear()
        if self.embedded is not None:
            self.embedded.stop()

    def _track(self, engine: Engine) -> Engine:
        self._engines.append(engine)
        return engine


def _connect_args() -> dict[str, Any]:
    return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "aeos"}}


@contextmanager
def open_database(
    settings: StorageSettings,
    *,
    run_migrations: bool = True,
    embedded_settings: dict[str, str] | None = None,
    own_embedded: bool = False,
) -> Iterator[Database]:
    """Opens (and by default migrates) the database ``settings`` name.

    With no ``AEOS_DATABASE_URL`` this starts the embedded server in ``AEOS_DATA_DIR``,
    or attaches to the one a running ``aeos serve`` owns (unless ``own_embedded``: a
    service must own its server), and stops it on exit if it started it.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        EmbeddedDatabaseError: the embedded server cannot start.
        MigrationError: the schema cannot be brought up to date.
    """
    db = _resolve(settings, embedded_settings or {}, own_embedded)
    try:
        _check_reachable(db)
        if run_migrations:
            db.migration = migrate(db.admin_url, settings.storage_engine)
            _set_app_password(db)
        yield db
    finally:
        db.close()


def _resolve(settings: StorageSettings, embedded_settings: dict[str, str], own: bool) -> Database:
    url = settings.admin_url()
    app_password = settings.app_db_password.get_secret_value() if settings.app_db_password else None
    if url is not None:
        return Database(url, app_password, settings.pool_size)
    pg = EmbeddedPostgres(settings.data_dir, settings.embedded_port, embedded_settings)
    pg.start(allow_attach=not own)
    try:
        admin_url = pg.ensure_database(EMBEDDED_DATABASE)
    except BaseException:
        pg.stop()
        raise
    return Database(admin_url, _embedded_app_password(settings.data_dir), settings.pool_size, pg)


def _embedded_app_password(data_dir: Path) -> str:
    path = data_dir / "app.password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _check_reachable(db: Database) -> None:
    try:
        with db.admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        host = f"{db.admin_url.host}:{db.admin_url.port or 5432}/{db.admin_url.database}"
        raise DatabaseUnavailableError(f"cannot reach the database at {host}: {exc.orig}") from None


def _set_app_password(db: Database) -> None:
    if db.app_password is None:
        _log.warning(
            "AEOS_APP_DB_PASSWORD is unset: the service logs in as the admin and switches to "
            "%s with SET ROLE; set it to log in with least privilege",
            APP_ROLE,
        )
        return
    with db.admin_engine().begin() as conn:
        # Parameters cannot be bound in utility statements; quote the literal ourselves.
        literal = conn.execute(
            text("SELECT quote_literal(:p)"), {"p": db.app_password}
        ).scalar_one()
        conn.execute(text(f"ALTER ROLE {APP_ROLE} LOGIN PASSWORD {literal}"))

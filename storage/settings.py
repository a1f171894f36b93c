"""Storage settings: where the database is and which engine to use.

Every setting reads from an ``AEOS_``-prefixed environment variable and is validated when
the service starts, so that a bad value fails fast with a message naming the variable.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATA_DIR = Path(platformdirs.user_data_dir("aeos", appauthor=False))
DEFAULT_EMBEDDED_PORT = 55433
DEFAULT_POOL_SIZE = 10
DEFAULT_SAMPLING_WINDOW_HOURS = 24.0
DEFAULT_AGENT_OFFLINE_AFTER_INTERVALS = 3.0
DEFAULT_AGENT_HEARTBEAT_INTERVAL_SECONDS = 60.0
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})


class EngineChoice(StrEnum):
    """Which storage engine the migrations set up (``AEOS_STORAGE_ENGINE``)."""

    AUTO = "auto"
    TIMESCALE = "timescale"
    POSTGRES = "postgres"


class StorageSettings(BaseSettings):
    """Settings of the storage layer (environment variables ``AEOS_*``)."""

    model_config = SettingsConfigDict(env_prefix="AEOS_", extra="ignore")

    database_url: Annotated[
        SecretStr | None,
        Field(description="Admin URL of the database; unset runs an embedded PostgreSQL."),
    ] = None
    app_db_password: Annotated[
        SecretStr | None,
        Field(description="Password of the least-privilege `aeos_app` role the service uses."),
    ] = None
    data_dir: Annotated[Path, Field(description="Where embedded data lives.")] = DEFAULT_DATA_DIR
    storage_engine: EngineChoice = EngineChoice.AUTO
    embedded_port: Annotated[int, Field(ge=1024, le=65535)] = DEFAULT_EMBEDDED_PORT
    pool_size: Annotated[int, Field(ge=1, le=200)] = DEFAULT_POOL_SIZE
    sampling_window_hours: Annotated[
        float,
        Field(
            ge=1,
            le=24 * 366,
            description="How long unsampled traces keep their spans (full-fidelity window).",
        ),
    ] = DEFAULT_SAMPLING_WINDOW_HOURS

    agent_offline_after_intervals: Annotated[
        float,
        Field(
            gt=1,
            le=1000,
            description="An agent silent for longer than this many heartbeat intervals is offline.",
        ),
    ] = DEFAULT_AGENT_OFFLINE_AFTER_INTERVALS
    agent_heartbeat_interval_seconds: Annotated[
        float,
        Field(
            gt=0,
            le=86400,
            description="Heartbeat interval of agents that do not announce one "
            "(damn.heartbeat.interval).",
        ),
    ] = DEFAULT_AGENT_HEARTBEAT_INTERVAL_SECONDS

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_database_url(value.get_secret_value())
        return value

    @property
    def sampling_window(self) -> timedelta:
        """``AEOS_SAMPLING_WINDOW_HOURS`` as a duration."""
        return timedelta(hours=self.sampling_window_hours)

    def admin_url(self) -> URL | None:
        """The admin database URL as a SQLAlchemy URL with the psycopg driver, if set."""
        if self.database_url is None:
            return None
        return parse_database_url(self.database_url.get_secret_value())


def parse_database_url(raw: str) -> URL:
    """Parses a PostgreSQL URL and normalises its driver to psycopg 3.

    Raises:
        ValueError: the URL is malformed or not a PostgreSQL URL.
    """
    try:
        url = make_url(raw.strip())
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {exc}") from None
    if url.drivername not in POSTGRES_SCHEMES:
        raise ValueError(f"expected a postgresql:// URL, got scheme {url.drivername!r}")
    if not url.host and not url.query.get("host"):
        raise ValueError("the URL names no host")
    if not url.database:
        raise ValueError("the URL names no database")
    return url.set(drivername="postgresql+psycopg")

"""Settings: defaults, parsing and clear errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from otlp_receiver.settings import ReceiverSettings
from query_api.settings import ApiSettings
from storage.settings import EngineChoice, StorageSettings, parse_database_url


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AEOS_DATABASE_URL", "AEOS_STORAGE_ENGINE", "AEOS_RECEIVER_GRPC_PORT"):
        monkeypatch.delenv(var, raising=False)
    assert StorageSettings().database_url is None
    assert StorageSettings().storage_engine is EngineChoice.AUTO
    assert (ReceiverSettings().grpc_port, ReceiverSettings().http_port) == (4317, 4318)
    assert ReceiverSettings().max_request_bytes == 64 * 1024 * 1024
    assert ApiSettings().host == "127.0.0.1"


def test_url_is_normalised_to_psycopg() -> None:
    url = parse_database_url("postgres://u:p@db.example:5433/aeos")
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port, url.database) == ("db.example", 5433, "aeos")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("nonsense", "not a database URL"),
        ("mysql://u@h/db", "expected a postgresql:// URL"),
        ("postgresql://u@h", "names no database"),
    ],
)
def test_bad_urls(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_database_url(raw)


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEOS_STORAGE_ENGINE", "sqlite")
    with pytest.raises(ValidationError, match="storage_engine"):
        StorageSettings()
    monkeypatch.setenv("AEOS_RECEIVER_GRPC_PORT", "70000")
    with pytest.raises(ValidationError, match="grpc_port"):
        ReceiverSettings()


def test_blank_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEOS_DATABASE_URL", "  ")
    assert StorageSettings().admin_url() is None


def test_sampling_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AEOS_SAMPLING_WINDOW_HOURS", raising=False)
    assert StorageSettings().sampling_window == timedelta(hours=24)
    monkeypatch.setenv("AEOS_SAMPLING_WINDOW_HOURS", "36")
    assert StorageSettings().sampling_window == timedelta(hours=36)
    monkeypatch.setenv("AEOS_SAMPLING_WINDOW_HOURS", "0.5")
    with pytest.raises(ValidationError, match="sampling_window_hours"):
        StorageSettings()

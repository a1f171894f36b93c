"""docker-compose.yml cannot run here (no Docker engine): check it statically."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from otlp_receiver.settings import ReceiverSettings
from query_api.settings import ApiSettings
from storage.settings import StorageSettings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _known_settings() -> set[str]:
    known: set[str] = set()
    for cls in (StorageSettings, ReceiverSettings, ApiSettings):
        prefix = str(cls.model_config.get("env_prefix", ""))
        known |= {f"{prefix}{name}".upper() for name in cls.model_fields}
    return known


def test_images_are_pinned() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert re.match(r"\d+\.\d+", tag), f"{name}: image {image!r} is not pinned to a version"
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert base is not None
    assert re.search(r":\d+\.\d+\.\d+", base.group(1))


def test_timescaledb_targets_postgresql_17_with_a_volume_and_health_check() -> None:
    compose = _compose()
    db = compose["services"]["timescaledb"]
    assert db["image"].startswith("timescale/timescaledb:")
    assert db["image"].endswith("-pg17")
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_service_settings_exist_and_wiring_is_consistent() -> None:
    aeos = _compose()["services"]["aeos"]
    env: dict[str, str] = aeos["environment"]
    unknown = set(env) - _known_settings()
    assert unknown == set(), f"settings passed that the service does not read: {unknown}"
    assert "@timescaledb:5432/" in env["AEOS_DATABASE_URL"]
    assert aeos["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert aeos["build"]["dockerfile"] == "Dockerfile"
    assert (ROOT / "Dockerfile").exists()
    published = {p.split(":")[-1] for p in aeos["ports"]}
    assert published == {"4317", "4318", env["AEOS_API_PORT"]}
    assert env["AEOS_API_PORT"] in " ".join(aeos["healthcheck"]["test"])


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("aeos", "semconv", "storage", "otlp_receiver", "query_api", "dashboards_json"):
        assert f"COPY {package} ./{package}" in dockerfile

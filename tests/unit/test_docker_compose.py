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


# Grafana settings the stack passes, from Grafana's configuration reference
# (docs/sources/setup-grafana/configure-grafana: [security] admin_user, admin_password;
# [users] allow_sign_up; [auth.anonymous] enabled; [analytics] reporting_enabled,
# check_for_updates; [dashboards] default_home_dashboard_path). GF_<SECTION>_<KEY>.
GRAFANA_SETTINGS = {
    "GF_SECURITY_ADMIN_USER",
    "GF_SECURITY_ADMIN_PASSWORD",
    "GF_USERS_ALLOW_SIGN_UP",
    "GF_AUTH_ANONYMOUS_ENABLED",
    "GF_ANALYTICS_REPORTING_ENABLED",
    "GF_ANALYTICS_CHECK_FOR_UPDATES",
    "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
}
AEOS_IMAGE_SERVICES = ("aeos", "demo-loader", "grafana-provision")
GRAFANAS = ("grafana", "grafana-client")


def _provision_commands() -> list[list[str]]:
    script = _compose()["services"]["grafana-provision"]["command"][0]
    return [line.split() for line in script.splitlines() if "grafana provision" in line]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_one_shot_services_use_the_service_image_and_known_settings() -> None:
    services = _compose()["services"]
    image = services["aeos"]["image"]
    for name in AEOS_IMAGE_SERVICES:
        assert services[name]["image"] == image, name
        unknown = set(services[name]["environment"]) - _known_settings()
        assert unknown == set(), f"{name} passes settings nobody reads: {unknown}"
    assert services["demo-loader"]["depends_on"]["aeos"]["condition"] == "service_healthy"
    assert services["demo-loader"]["restart"] == "no"
    provision = services["grafana-provision"]
    assert provision["depends_on"]["demo-loader"]["condition"] == "service_completed_successfully"
    demo = services["demo-loader"]["command"]
    assert _option(demo, "--endpoint") == "aeos:4317"


def test_grafana_is_pinned_provisioned_and_healthy() -> None:
    compose = _compose()
    services = compose["services"]
    mounts_by_volume: dict[str, str] = {}
    for name in GRAFANAS:
        grafana = services[name]
        assert re.fullmatch(r"grafana/grafana:1[3-9]\.\d+\.\d+", grafana["image"])
        assert set(grafana["environment"]) <= GRAFANA_SETTINGS
        assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
        dep = grafana["depends_on"]["grafana-provision"]["condition"]
        assert dep == "service_completed_successfully"
        volumes = dict(v.split(":")[:2] for v in grafana["volumes"])
        assert "/var/lib/grafana" in volumes.values()
        for source, target in volumes.items():
            if not source.startswith("."):
                assert source in compose["volumes"], source
            if target == "/etc/grafana/provisioning":
                mounts_by_volume[source] = name
        home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        root = next(t for s, t in volumes.items() if s == "./dashboards_json")
        assert home.startswith(root + "/")
        assert (ROOT / "dashboards_json" / home.removeprefix(root + "/")).exists()
    # Each provisioning run writes into a volume that a Grafana reads as its provisioning
    # directory, and points the dashboard providers at where that Grafana mounts the JSON.
    provisioner_mounts = dict(v.split(":")[:2] for v in services["grafana-provision"]["volumes"])
    commands = _provision_commands()
    assert len(commands) == 2
    assert any("--staff" in c for c in commands)
    for args in commands:
        out = _option(args, "--out")
        volume = next(s for s, t in provisioner_mounts.items() if t == out)
        assert volume in mounts_by_volume, f"{out} is not a Grafana's provisioning directory"
        assert _option(args, "--dashboards-path") == "/var/lib/grafana/dashboards/aeos"
        assert _option(args, "--db-host") == "timescaledb:5432"
        api_port = services["aeos"]["environment"]["AEOS_API_PORT"]
        assert _option(args, "--jaeger-url") == f"http://aeos:{api_port}/jaeger"


def test_provisioned_data_source_uids_are_the_dashboards() -> None:
    from aeos._cli_grafana import Target, datasources
    from dashboards_json._gen import DATASOURCE_UIDS, build_all
    from storage.grafana import GrafanaLogin

    target = Target("timescaledb:5432", "aeos", "disable", "http://aeos:8686/jaeger", True, 1700)
    files = datasources(1, GrafanaLogin("r", "pw$x", None), "key", target)
    uids = {d["uid"] for d in files["datasources"]}
    assert uids == set(DATASOURCE_UIDS)
    used = {
        t["datasource"]["uid"]
        for board in build_all().values()
        for p in board["panels"]
        for t in p.get("targets", [])
    }
    assert used == uids
    pg = next(d for d in files["datasources"] if d["uid"] == "aeos-pg")
    assert pg["secureJsonData"]["password"] == "pw$$x"  # Grafana expands $VAR in these files


def test_secrets_come_from_an_env_file_that_is_not_committed() -> None:
    required = re.compile(r"\$\{(\w+):\?[^}]*\}")
    secrets_used: set[str] = set()
    for name, service in _compose()["services"].items():
        for key, value in service.get("environment", {}).items():
            if "PASSWORD" in key:
                match = required.fullmatch(str(value))
                assert match, f"{name}: {key} is not taken from the env file"
                secrets_used.add(match.group(1))
            if key.endswith("DATABASE_URL"):
                password = str(value).split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
                assert required.fullmatch(password), f"{name}: {key} holds a literal password"
    example = (ROOT / ".env.example").read_text()
    assert secrets_used == {"AEOS_DB_PASSWORD", "AEOS_APP_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    for variable in secrets_used:
        assert f"\n{variable}=\n" in example
    assert ".env" in (ROOT / ".gitignore").read_text().split()

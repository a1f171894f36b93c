"""The ``aeos`` CLI against a real database, run as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from storage.auth import authenticate
from storage.database import Database
from storage.embedded import free_port
from storage.ingest.rows import Batch
from storage.jobs.scheduler import LOCK_NAMESPACE, lock_key
from storage.migrate import StorageEngine
from tests.integration.test_sampling import NOW, T0, ingest, trace

AEOS = [sys.executable, "-m", "aeos"]


@pytest.fixture(params=[StorageEngine.POSTGRES])
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    """The CLI is engine-agnostic: one engine is enough here."""
    kind: StorageEngine = request.param
    return kind


def aeos(
    *args: str, url: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AEOS_")}
    environ["AEOS_DATA_DIR"] = "/nonexistent-aeos-test-dir"  # never start an embedded server here
    if url is not None:
        environ["AEOS_DATABASE_URL"] = url
    environ.update(env or {})
    return subprocess.run([*AEOS, *args], capture_output=True, text=True, env=environ, timeout=120)


def _url(db: Database) -> str:
    return db.admin_url.render_as_string(hide_password=False)


def _counts(db: Database) -> tuple[int, int]:
    with db.admin_engine().connect() as conn:
        orgs = conn.execute(text("SELECT count(*) FROM orgs")).scalar_one()
        keys = conn.execute(text("SELECT count(*) FROM api_keys")).scalar_one()
    return orgs, keys


def test_orgs_create_prints_ids_and_working_keys(database: Database) -> None:
    result = aeos("orgs", "create", "Acme Corp", "--plan", "enterprise", url=_url(database))
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    assert out["name"] == "Acme Corp"
    assert out["plan"] == "enterprise"
    assert out["ingest_key"].startswith("aeos_ik_")
    assert out["admin_key"].startswith("aeos_ak_")
    with database.app_engine().begin() as conn:
        ingest = authenticate(conn, out["ingest_key"])
        admin_key = authenticate(conn, out["admin_key"])
    assert ingest is not None
    assert str(ingest.org_id) == out["org_id"]
    assert ingest.role == "ingest"
    assert admin_key is not None
    assert admin_key.role == "admin"
    listed = aeos("orgs", "list", "--json", url=_url(database))
    assert [o["name"] for o in json.loads(listed.stdout)] == ["Acme Corp"]
    assert json.loads(listed.stdout)[0]["active_keys"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["orgs", "create", "dup"], "already exists"),
        (["orgs", "create", "x", "--plan", "gold"], "unknown plan 'gold'"),
        (["orgs", "create", "   "], "must not be blank"),
        (["keys", "create", "--org", "nope", "--role", "ingest"], "no org named 'nope'"),
        (["keys", "create", "--org", "dup", "--role", "root"], "unknown role 'root'"),
        (["keys", "revoke", "3f2a0000-0000-0000-0000-000000000000"], "no API key"),
        (["keys", "revoke", "garbage"], "neither a key id"),
        (["orgs", "set-sampling", "dup", "101"], "between 0 and 100"),
        (["orgs", "set-sampling", "dup", "12.345"], "at most two decimals"),
        (["orgs", "set-sampling", "dup", "most"], "not a percentage"),
        (["orgs", "set-sampling", "nope", "5"], "no org named 'nope'"),
        (
            ["jobs", "run", "nope"],
            "unknown job 'nope'; expected one of partitions, sampling-sweep, retention, "
            "timescale-jobs, alert-evaluation, alert-deliveries, agent-status, rollup-folds",
        ),
        (["jobs", "run", "partitions", "--now", "yesterday"], "not an ISO 8601 time"),
    ],
)
def test_bad_input_fails_clearly_and_creates_nothing(
    database: Database, args: list[str], message: str
) -> None:
    assert aeos("orgs", "create", "dup", url=_url(database)).returncode == 0
    before = _counts(database)
    result = aeos(*args, url=_url(database))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _counts(database) == before


def test_keys_create_and_revoke(database: Database) -> None:
    assert aeos("orgs", "create", "beta", url=_url(database)).returncode == 0
    created = aeos(
        "keys", "create", "--org", "beta", "--role", "member", "--name", "ci", url=_url(database)
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("aeos_mk_")
    assert key["prefix"] == key["key"][:16]
    revoked = aeos("keys", "revoke", key["prefix"], url=_url(database))
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["already_revoked"] is False
    again = aeos("keys", "revoke", key["key_id"], url=_url(database))
    assert json.loads(again.stdout)["already_revoked"] is True
    with database.app_engine().begin() as conn:
        assert authenticate(conn, key["key"]) is None


@pytest.mark.parametrize(
    ("url", "env", "code", "message"),
    [
        ("not a url", {}, 2, "AEOS_DATABASE_URL"),
        ("mysql://u@h/db", {}, 2, "expected a postgresql:// URL"),
        ("postgresql://u@/db", {}, 2, "names no host"),
        (None, {"AEOS_STORAGE_ENGINE": "mongo"}, 2, "AEOS_STORAGE_ENGINE"),
        (None, {"AEOS_POOL_SIZE": "0"}, 2, "AEOS_POOL_SIZE"),
    ],
)
def test_invalid_settings_name_the_setting(
    url: str | None, env: dict[str, str], code: int, message: str
) -> None:
    result = aeos("orgs", "list", url=url, env=env)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database(tmp_path: Path) -> None:
    port = free_port()
    result = aeos("orgs", "create", "x", url=f"postgresql://nobody@127.0.0.1:{port}/aeos")
    assert result.returncode == 1
    assert "cannot reach the database at 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["migrate"],
        ["orgs"],
        ["orgs", "create"],
        ["orgs", "list"],
        ["keys"],
        ["keys", "create"],
        ["keys", "revoke"],
        ["orgs", "set-sampling"],
        ["jobs"],
        ["jobs", "list"],
        ["jobs", "run"],
        ["serve"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = aeos(*command, "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout


def test_set_sampling_shows_in_orgs_list(database: Database) -> None:
    assert aeos("orgs", "create", "gamma", url=_url(database)).returncode == 0
    result = aeos("orgs", "set-sampling", "gamma", "25", url=_url(database))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"org": "gamma", "trace_sample_percent": "25.00"}
    listed = json.loads(aeos("orgs", "list", "--json", url=_url(database)).stdout)
    assert listed[0]["trace_sample_percent"] == "25.00"
    table = aeos("orgs", "list", url=_url(database)).stdout
    assert "SAMPLE %" in table
    assert "25.00" in table


def test_jobs_run_and_list(database: Database) -> None:
    created = aeos("orgs", "create", "delta", url=_url(database))
    org = json.loads(created.stdout)["org_id"]
    assert aeos("orgs", "set-sampling", "delta", "0", url=_url(database)).returncode == 0
    trace_ids = [bytes([n]) * 16 for n in range(1, 6)]
    ingest(database, Batch(uuid.UUID(org), spans=[s for t in trace_ids for s in trace(t, T0, T0)]))
    before = json.loads(aeos("jobs", "list", "--json", url=_url(database)).stdout)
    assert [(j["job"], j["last_started_at"]) for j in before] == [
        ("partitions", None),
        ("sampling-sweep", None),
        ("retention", None),
        ("timescale-jobs", None),
        ("alert-evaluation", None),
        ("alert-deliveries", None),
        ("agent-status", None),
        ("rollup-folds", None),
    ]

    swept = aeos("jobs", "run", "sampling-sweep", "--now", NOW.isoformat(), url=_url(database))

    assert swept.returncode == 0, swept.stderr
    out = json.loads(swept.stdout)
    assert out["status"] == "ok"
    assert out["now"] == str(NOW)
    assert out["instance"].startswith("cli:")
    assert out["summary"]["traces_pruned"] == 5
    assert out["summary"]["spans_deleted"] == 10
    with database.admin_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM spans")).scalar_one() == 0
    partitions = aeos(
        "jobs", "run", "partitions", "--now", "2026-11-18T12:00:00", url=_url(database)
    )
    assert partitions.returncode == 0, partitions.stderr
    assert json.loads(partitions.stdout)["summary"]["spans"] >= 4  # days behind and ahead
    after = {
        j["job"]: j for j in json.loads(aeos("jobs", "list", "--json", url=_url(database)).stdout)
    }
    assert after["sampling-sweep"]["status"] == "ok"
    assert after["sampling-sweep"]["summary"]["traces_pruned"] == 5
    assert after["partitions"]["last_success_at"] is not None
    pruned = aeos("jobs", "run", "retention", "--now", NOW.isoformat(), url=_url(database))
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["status"] == "ok"
    table = aeos("jobs", "list", url=_url(database)).stdout
    assert "sampling-sweep" in table
    assert "5m" in table


def test_jobs_run_refuses_a_job_another_process_is_running(database: Database) -> None:
    conninfo = database.admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, lock_key("partitions")])
        result = aeos("jobs", "run", "partitions", url=_url(database))
    assert result.returncode == 1
    assert "job partitions is running in another process" in result.stderr
    assert "Traceback" not in result.stderr
    assert aeos("jobs", "run", "partitions", url=_url(database)).returncode == 0

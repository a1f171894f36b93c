"""A failing periodic job says what failed, on which relation, and why, in one line: in
the log, in ``scheduler_runs.failure`` and from the CLI (non-zero exit); and a failing
TimescaleDB job shows in the self-metrics and in ``platform_timescale_jobs``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text

from query_api import create_app
from storage import admin
from storage.database import Database
from storage.jobs.scheduler import Job, Outcome, attempt
from storage.jobs.timescale_jobs import check_timescale_jobs
from storage.migrate import StorageEngine
from storage.retention.run import run_retention
from storage.tenancy import DbRole, Scope, act_as
from tests.conftest import settle
from tests.integration.test_cli import _url, aeos

# Both TimescaleDB job states (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("background_jobs")

FAILURE = (
    "retention: pruning events failed: InsufficientPrivilege: permission denied for table events"
)


def _conninfo(db: Database) -> str:
    return db.admin_url.set(drivername="postgresql").render_as_string(False)


def _old_event_no_delete(db: Database) -> None:
    """A free org's event 10 days old (past its 7 days) next to an enterprise org's (so
    their partition or chunk stays), and a worker that may not delete."""
    with db.admin_engine().begin() as conn:
        free = admin.create_org(conn, f"o-{uuid.uuid4().hex[:6]}", "free").org_id
        big = admin.create_org(conn, f"o-{uuid.uuid4().hex[:6]}", "enterprise").org_id
        conn.execute(text("RESET ROLE"))
        for org in (free, big):
            conn.execute(
                text("INSERT INTO events (org_id, time, event_id) VALUES (:o, :t, :e)"),
                {"o": org, "t": datetime.now(UTC) - timedelta(days=10), "e": uuid.uuid4().bytes},
            )
    settle(db)
    with db.admin_engine().begin() as conn:
        conn.execute(text("REVOKE DELETE ON events FROM aeos_worker"))


def test_a_failed_job_is_one_line_in_the_log_and_in_its_run(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    _old_event_no_delete(database)
    job = Job(f"retention-{uuid.uuid4().hex[:6]}", timedelta(hours=1), _retention)
    engine = database.app_engine()
    with caplog.at_level(logging.INFO, logger="storage.jobs.scheduler"):
        result = attempt(engine, job, instance="t")
    assert result.outcome is Outcome.FAILED
    assert result.failure == FAILURE
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith(f"job {job.name} failed in ")
    assert errors[0].endswith(f"s: {FAILURE}")
    assert "\n" not in errors[0]
    with database.admin_engine().connect() as conn:
        row = conn.execute(
            text("SELECT status, failure, error FROM scheduler_runs WHERE job = :j"),
            {"j": job.name},
        ).one()
    assert (row.status, row.failure) == ("failed", FAILURE)
    assert "Traceback" in row.error  # the details stay


def _retention(engine: Engine, now: datetime) -> dict[str, object]:
    return run_retention(engine, now).as_dict()


def test_the_cli_says_what_failed_and_exits_non_zero(database: Database) -> None:
    _old_event_no_delete(database)

    direct = aeos("retention", "run", url=_url(database))
    assert direct.returncode == 1
    assert direct.stderr.strip().splitlines()[-1] == f"error: {FAILURE}"

    job = aeos("jobs", "run", "retention", url=_url(database))
    assert job.returncode == 1
    assert job.stderr.strip().splitlines()[-1] == f"error: job retention failed: {FAILURE}"
    assert json.loads(job.stdout)["failure"] == FAILURE

    listed = aeos("jobs", "list", url=_url(database))
    assert listed.returncode == 0, listed.stderr
    assert f"failed: {FAILURE}" in listed.stdout
    rows = {
        r["job"]: r for r in json.loads(aeos("jobs", "list", "--json", url=_url(database)).stdout)
    }
    assert rows["retention"]["failure"] == FAILURE


def _failing_timescale_job(db: Database) -> int:
    """A TimescaleDB job that fails, run once by TimescaleDB's own scheduler."""
    with psycopg.connect(_conninfo(db), autocommit=True) as conn:
        conn.execute(
            "CREATE PROCEDURE aeos_test_broken(job_id int, config jsonb) LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'the disk is on fire'; END $$"
        )
        row = conn.execute("SELECT add_job('aeos_test_broken', '1 hour', scheduled => false)")
        job_id = int(row.fetchone()[0])  # type: ignore[index]
        conn.execute("SELECT alter_job(%s, scheduled => true, next_start => now())", [job_id])
        deadline = time.monotonic() + 120  # the background scheduler picks it up (polled)
        while time.monotonic() < deadline:
            status = conn.execute(
                "SELECT last_run_status FROM timescaledb_information.job_stats WHERE job_id = %s",
                [job_id],
            ).fetchone()
            if status is not None and status[0] == "Failed":
                conn.execute("SELECT alter_job(%s, scheduled => false)", [job_id])
                return job_id
            time.sleep(0.5)
    raise AssertionError("TimescaleDB's scheduler did not run the job")


def test_a_failing_timescale_job_shows_in_metrics_and_platform_health(
    database: Database, engine_kind: StorageEngine
) -> None:
    engine = database.app_engine()
    if engine_kind is not StorageEngine.TIMESCALE:
        assert check_timescale_jobs(engine, datetime.now(UTC)) == {"jobs": 0, "failing": []}
        return
    settle(database)
    job_id = _failing_timescale_job(database)
    try:
        _check_reports(database, job_id)
    finally:  # the jobs-ran state runs every job when the test ends
        with psycopg.connect(_conninfo(database), autocommit=True) as conn:
            conn.execute("SELECT delete_job(%s)", [job_id])


def _check_reports(database: Database, job_id: int) -> None:
    engine = database.app_engine()
    summary = check_timescale_jobs(engine, datetime.now(UTC))

    failing = [f for f in summary["failing"] if f["job_id"] == job_id]
    assert [f["error"] for f in failing] == ["the disk is on fire"]
    assert summary["jobs"] > 50  # the policies are there too, and not failing
    # The policies are not failing (TimescaleDB's telemetry reporter may be: this test
    # server cannot reach the internet, and the report says so).
    others = {f["proc"] for f in summary["failing"] if f["job_id"] != job_id}
    assert others <= {"policy_telemetry"}

    async def scrape() -> str:
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return (await client.get("/metrics")).text

    body = asyncio.run(scrape())
    labels = f'job_id="{job_id}",proc="aeos_test_broken",relation=""'
    assert f"aeos_timescaledb_job_last_run_ok{{{labels}}} 0.0" in body
    assert f"aeos_timescaledb_job_failures{{{labels}}} 1.0" in body
    assert f"aeos_timescaledb_jobs_failing {1.0 + len(others)}" in body
    with database.app_engine().begin() as conn:
        act_as(conn, Scope(DbRole.SUPPORT))
        rows = conn.execute(
            text(
                "SELECT proc_name, last_run_status, total_failures, last_error "
                "FROM platform_timescale_jobs WHERE job_id = :j"
            ),
            {"j": job_id},
        ).all()
    assert [tuple(r) for r in rows] == [("aeos_test_broken", "Failed", 1, "the disk is on fire")]

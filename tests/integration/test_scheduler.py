"""The job scheduler against a real database: one run per interval across schedulers, the
lock, failures, shutdown, and the self-metrics on the query API's ``/metrics``.

Intervals are tiny and the tests wait on conditions (with a timeout), never on time."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from query_api import create_app
from storage.database import Database
from storage.jobs.scheduler import ABANDONED, Job, JobRegistry, Outcome, Scheduler, attempt
from storage.migrate import StorageEngine
from storage.tenancy import DbRole, Scope, act_as

WAIT_S = 60.0


@pytest.fixture(params=[StorageEngine.POSTGRES])
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    """The scheduler uses only plain tables and advisory locks: one engine is enough."""
    kind: StorageEngine = request.param
    return kind


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def runs(db: Database, job: str) -> list[Any]:
    with db.admin_engine().connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT instance, started_at, finished_at, status, summary, error "
                    "FROM scheduler_runs WHERE job = :job ORDER BY started_at"
                ),
                {"job": job},
            )
        )


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Probe:
    """A job function that counts its calls and how many ran at once."""

    def __init__(self, block: threading.Event | None = None) -> None:
        self.calls = 0
        self.active = 0
        self.peak = 0
        self.started = threading.Event()
        self._block = block
        self._lock = threading.Lock()

    def __call__(self, engine: Engine, now: datetime) -> Mapping[str, Any]:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
        self.started.set()
        try:
            if self._block is not None:
                assert self._block.wait(WAIT_S)
            with engine.connect() as conn:  # a real job touches the database
                conn.execute(text("SELECT pg_sleep(0.01)"))
            return {"call": self.calls, "now": now}
        finally:
            with self._lock:
                self.active -= 1


def test_two_schedulers_run_a_job_once_per_interval(database: Database) -> None:
    name, interval = unique("tick"), timedelta(milliseconds=200)
    probe = Probe()
    job = Job(name, interval, probe)
    schedulers = [
        Scheduler(database.app_engine(), [job], instance=instance) for instance in ("a", "b")
    ]

    async def main() -> None:
        tasks = [asyncio.create_task(s.run()) for s in schedulers]
        await until(lambda: len(runs(database, name)) >= 6, "six runs")
        for s in schedulers:
            s.stop()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    recorded = runs(database, name)
    assert probe.peak == 1  # never two at once
    assert probe.calls == len(recorded)  # every run is recorded
    assert {r.status for r in recorded} == {"ok"}
    assert {r.instance for r in recorded} <= {"a", "b"}
    starts = [r.started_at for r in recorded]
    assert all(b - a >= interval for a, b in itertools.pairwise(starts)), starts
    assert all(r.finished_at >= r.started_at for r in recorded)


def test_a_job_held_by_one_process_is_skipped_by_another(database: Database) -> None:
    name = unique("held")
    release = threading.Event()
    probe = Probe(block=release)
    job = Job(name, timedelta(hours=1), probe)
    results: list[Any] = []
    first = threading.Thread(
        target=lambda: results.append(attempt(database.app_engine(), job, instance="a"))
    )
    first.start()
    try:
        assert probe.started.wait(WAIT_S)
        for respect_cadence in (True, False):
            other = attempt(
                database.app_engine(), job, instance="b", respect_cadence=respect_cadence
            )
            assert other.outcome is Outcome.LOCKED
            assert not other.ran
            assert timedelta(minutes=59) < other.next_due_in <= timedelta(hours=1)
    finally:
        release.set()
        first.join(WAIT_S)
    assert [r.outcome for r in results] == [Outcome.OK]
    assert probe.calls == 1
    # Not due for another hour, unless asked for explicitly (as `aeos jobs run` does).
    assert attempt(database.app_engine(), job, instance="b").outcome is Outcome.NOT_DUE
    forced = attempt(database.app_engine(), job, instance="b", respect_cadence=False)
    assert forced.outcome is Outcome.OK
    assert [(r.instance, r.status) for r in runs(database, name)] == [("a", "ok"), ("b", "ok")]


def test_a_failing_job_is_recorded_and_the_others_go_on(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    boom, fine = unique("boom"), unique("fine")
    interval = timedelta(milliseconds=100)

    def explode(engine: Engine, now: datetime) -> Mapping[str, Any]:
        return {"ratio": 1 / 0}

    jobs = JobRegistry().add(Job(boom, interval, explode)).add(Job(fine, interval, Probe()))
    scheduler = Scheduler(database.app_engine(), jobs, instance="a")

    async def main() -> None:
        task = asyncio.create_task(scheduler.run())
        await until(
            lambda: len(runs(database, boom)) >= 3 and len(runs(database, fine)) >= 3,
            "three runs of each job",
        )
        scheduler.stop()
        await task

    with caplog.at_level(logging.INFO, logger="storage.jobs.scheduler"):
        asyncio.run(main())
    failed = runs(database, boom)
    assert {r.status for r in failed} == {"failed"}
    assert all("ZeroDivisionError: division by zero" in r.error for r in failed)
    assert all(r.error.startswith("Traceback") for r in failed)
    assert {r.status for r in runs(database, fine)} == {"ok"}
    logged = [r for r in caplog.records if r.name == "storage.jobs.scheduler"]
    assert any(r.levelno == logging.ERROR and boom in r.getMessage() for r in logged)
    assert any("ZeroDivisionError" in r.getMessage() for r in logged)
    assert any(r.levelno == logging.INFO and f"job {fine} ok" in r.getMessage() for r in logged)


def test_stopping_waits_for_the_running_job(database: Database) -> None:
    name = unique("slow")
    release = threading.Event()
    probe = Probe(block=release)
    scheduler = Scheduler(database.app_engine(), [Job(name, timedelta(hours=1), probe)])

    async def main() -> None:
        task = asyncio.create_task(scheduler.run())
        await until(probe.started.is_set, "the job to start")
        scheduler.stop()
        await asyncio.sleep(0)  # the scheduler is now waiting for the job
        assert not task.done()
        release.set()
        await asyncio.wait_for(task, WAIT_S)

    asyncio.run(main())
    assert [r.status for r in runs(database, name)] == ["ok"]


def test_stopping_gives_up_on_a_job_after_the_timeout(database: Database) -> None:
    name = unique("stuck")
    release = threading.Event()
    probe = Probe(block=release)
    scheduler = Scheduler(
        database.app_engine(), [Job(name, timedelta(hours=1), probe)], shutdown_timeout=0.05
    )

    async def main() -> None:
        task = asyncio.create_task(scheduler.run())
        await until(probe.started.is_set, "the job to start")
        scheduler.stop()
        await asyncio.wait_for(task, WAIT_S)

    try:
        asyncio.run(main())
        assert [r.status for r in runs(database, name)] == ["running"]
    finally:
        release.set()


def test_a_run_left_by_a_dead_process_is_closed_as_failed(database: Database) -> None:
    name = unique("orphan")
    with database.admin_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO scheduler_runs (job, started_at, instance) "
                "VALUES (:job, now() - interval '2 hours', 'dead:1')"
            ),
            {"job": name},
        )
    result = attempt(database.app_engine(), Job(name, timedelta(hours=1), Probe()), instance="a")
    assert result.outcome is Outcome.OK
    recorded = runs(database, name)
    assert [(r.instance, r.status, r.error) for r in recorded] == [
        ("dead:1", "failed", ABANDONED),
        ("a", "ok", None),
    ]


def test_the_metrics_are_on_the_query_api(database: Database) -> None:
    ok, bad = unique("metric-ok"), unique("metric-bad")

    def fail(engine: Engine, now: datetime) -> Mapping[str, Any]:
        raise RuntimeError("no")

    engine = database.app_engine()
    assert attempt(engine, Job(ok, timedelta(hours=1), Probe()), instance="a").ran
    assert attempt(engine, Job(bad, timedelta(hours=1), fail), instance="a").ran

    async def scrape() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get("/metrics")

    response = asyncio.run(scrape())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert f'aeos_scheduler_runs_total{{job="{ok}",status="ok"}} 1.0' in body
    assert f'aeos_scheduler_runs_total{{job="{bad}",status="failed"}} 1.0' in body
    assert f'aeos_scheduler_run_duration_seconds_count{{job="{ok}"}} 1.0' in body
    assert f'aeos_scheduler_last_success_timestamp_seconds{{job="{ok}"}}' in body
    assert f'aeos_scheduler_last_success_timestamp_seconds{{job="{bad}"}}' not in body


def test_job_names_are_unique_and_looked_up_clearly() -> None:
    registry = JobRegistry().add(Job("a", timedelta(seconds=1), Probe()))
    with pytest.raises(ValueError, match="registered already"):
        registry.add(Job("a", timedelta(seconds=2), Probe()))
    with pytest.raises(KeyError, match="unknown job 'b'; expected one of a"):
        registry.get("b")
    with pytest.raises(ValueError, match="positive"):
        Job("c", timedelta(0), Probe())


@pytest.mark.parametrize(
    ("scope", "can_read", "can_write"),
    [
        (Scope(DbRole.WORKER), True, True),
        (Scope(DbRole.STAFF), True, False),
        (Scope(DbRole.SUPPORT), True, False),
        (Scope(DbRole.INGEST), False, False),
        (Scope(DbRole.TENANT, uuid.uuid4()), False, False),
    ],
    ids=lambda v: getattr(getattr(v, "role", None), "value", None),
)
def test_who_may_read_and_write_scheduler_runs(
    database: Database, scope: Scope, can_read: bool, can_write: bool
) -> None:
    statements = {
        "SELECT count(*) FROM scheduler_runs": can_read,
        "INSERT INTO scheduler_runs (job, started_at, instance) VALUES ('x', now(), 'y')": can_write,
    }
    for statement, allowed in statements.items():
        with database.app_engine().connect() as conn, conn.begin():
            act_as(conn, scope)
            if allowed:
                conn.execute(text(statement))
            else:
                with pytest.raises(ProgrammingError, match="permission denied"):
                    conn.execute(text(statement))

"""One in-process scheduler for the service's periodic jobs, safe with several processes.

A :class:`Job` is a name, an interval and a function ``run(engine, now) -> summary``.
:class:`Scheduler` runs each registered job every ``interval`` in a thread of its own.
Several service processes may run the same jobs against one database:

- **One at a time.** Before running a job a process takes a session-level
  ``pg_try_advisory_lock`` on a connection it keeps for the run; a process that does not
  get it skips the job. The lock goes with the session, so a process that dies mid-run
  frees it at once.
- **One cadence for all.** Every run is a row of ``scheduler_runs``, written when it
  starts (status ``running``) and when it ends (``ok`` or ``failed``, with the job's
  summary or the error's traceback). Holding the lock, a process runs the job only if the
  last run by anyone started at least ``interval`` ago, by the database's clock, so the
  job runs once per interval however many processes there are, and their clocks need not
  agree. A ``running`` row found while holding the lock belongs to a process that died;
  it is closed as failed.

Each run is logged (one line: job, status, duration, summary; a failure as one line saying
what failed, on which relation and why, then its traceback) and counted in Prometheus
metrics (:data:`METRICS`, served by the query API at ``/metrics``). A failing job does
not stop the others nor its own next runs.

Jobs run in daemon threads rather than ``asyncio.to_thread``: on shutdown the scheduler
waits for a running job at most ``shutdown_timeout`` and then lets the process exit;
``asyncio.run`` would wait for an executor thread without a bound. A job abandoned that
way loses only its open transaction (jobs work in short transactions), and its run row is
closed as failed by the next process that takes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Connection, Engine

from storage.errors import failure_line
from storage.jobs import _runs as runs
from storage.jobs._runs import ABANDONED, LOCK_NAMESPACE, JobStatus, latest_runs, lock_key
from storage.tenancy import DbRole, Scope, act_as

__all__ = [
    "ABANDONED",
    "LOCK_NAMESPACE",
    "METRICS",
    "Attempt",
    "Job",
    "JobRegistry",
    "JobStatus",
    "Outcome",
    "Scheduler",
    "attempt",
    "default_instance",
    "latest_runs",
    "lock_key",
]

_log = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0
MAX_POLL = timedelta(seconds=30)
_SLACK = timedelta(milliseconds=5)

METRICS = CollectorRegistry()
RUNS = Counter(
    "aeos_scheduler_runs", "Runs of periodic jobs by outcome.", ["job", "status"], registry=METRICS
)
SKIPS = Counter(
    "aeos_scheduler_skips",
    "Turns of a job skipped: another process holds it (locked) or ran it lately (not_due).",
    ["job", "reason"],
    registry=METRICS,
)
DURATION = Histogram(
    "aeos_scheduler_run_duration_seconds",
    "Duration of one run of a periodic job.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
    registry=METRICS,
)
LAST_SUCCESS = Gauge(
    "aeos_scheduler_last_success_timestamp_seconds",
    "When the last successful run of a job (by this process) finished, in Unix seconds.",
    ["job"],
    registry=METRICS,
)

JobFunction = Callable[[Engine, datetime], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job: ``run(engine, now)`` every ``interval``; returns a JSON-able summary.

    ``run`` gets an engine on which it must choose its role (``storage.tenancy.act_as``)
    and ``now``, the time it should act for (the database's clock, or the one given to
    ``aeos jobs run --now``). It should work in short transactions: it may be abandoned
    when the service stops.
    """

    name: str
    interval: timedelta
    run: JobFunction

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip():
            raise ValueError(f"bad job name {self.name!r}")
        if self.interval <= timedelta(0):
            raise ValueError(f"job {self.name}: the interval must be positive")


@dataclass
class JobRegistry:
    """The jobs a service runs, by name (the service's composition root fills it)."""

    _jobs: dict[str, Job] = field(default_factory=dict)

    def add(self, job: Job) -> JobRegistry:
        """Registers ``job``; returns the registry, so that calls chain.

        Raises:
            ValueError: a job with this name is registered already.
        """
        if job.name in self._jobs:
            raise ValueError(f"a job named {job.name!r} is registered already")
        self._jobs[job.name] = job
        return self

    def get(self, name: str) -> Job:
        """The job named ``name``.

        Raises:
            KeyError: no such job (the message lists the known ones).
        """
        try:
            return self._jobs[name]
        except KeyError:
            raise KeyError(
                f"unknown job {name!r}; expected one of {', '.join(self._jobs) or 'none'}"
            ) from None

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)


class Outcome(StrEnum):
    """What one attempt to run a job came to."""

    OK = "ok"
    FAILED = "failed"
    LOCKED = "locked"  # another process is running it
    NOT_DUE = "not_due"  # its last run started less than an interval ago


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of :func:`attempt`; ``started_at``/``summary``/``error`` only if it ran."""

    job: str
    outcome: Outcome
    instance: str
    next_due_in: timedelta
    started_at: datetime | None = None
    now: datetime | None = None
    seconds: float | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    #: A failure's traceback, and its one line (what failed, on which relation, why).
    error: str | None = None
    failure: str | None = None

    @property
    def ran(self) -> bool:
        """Whether the job ran (successfully or not)."""
        return self.outcome in (Outcome.OK, Outcome.FAILED)


def default_instance() -> str:
    """``host:pid``: who a run is recorded as."""
    return f"{socket.gethostname()}:{os.getpid()}"


def attempt(
    engine: Engine,
    job: Job,
    *,
    instance: str,
    now: datetime | None = None,
    respect_cadence: bool = True,
) -> Attempt:
    """Runs ``job`` once if no other process is running it (and, by default, if it is due).

    Blocking: call it from a thread. A failure of the job itself is recorded and returned
    as ``Outcome.FAILED``; only database errors of the bookkeeping propagate.
    ``now`` is what the job is told the time is (default: the database's clock at start);
    ``respect_cadence=False`` runs it even if it ran less than an interval ago.
    """
    with engine.connect() as conn:
        if not runs.try_lock(conn, job.name):
            SKIPS.labels(job.name, "locked").inc()
            with conn.begin():
                act_as(conn, Scope(DbRole.WORKER))
                wait = runs.due_in(conn, job.name, job.interval)
            return Attempt(job.name, Outcome.LOCKED, instance, wait)
        try:
            return _attempt_locked(conn, engine, job, instance, now, respect_cadence)
        finally:
            runs.unlock(conn, job.name)


def _attempt_locked(
    conn: Connection,
    engine: Engine,
    job: Job,
    instance: str,
    now: datetime | None,
    respect_cadence: bool,
) -> Attempt:
    with conn.begin():
        act_as(conn, Scope(DbRole.WORKER))
        runs.close_abandoned(conn, job.name)
        wait = runs.due_in(conn, job.name, job.interval)
        if respect_cadence and wait > timedelta(0):
            SKIPS.labels(job.name, "not_due").inc()
            return Attempt(job.name, Outcome.NOT_DUE, instance, wait)
        started_at = runs.start(conn, job.name, instance)
    result = _run(engine, job, instance, started_at, now or started_at)
    with conn.begin():
        act_as(conn, Scope(DbRole.WORKER))
        runs.finish(
            conn,
            job.name,
            started_at,
            result.outcome.value,
            result.summary,
            result.error,
            result.failure,
        )
    return result


def _run(engine: Engine, job: Job, instance: str, started_at: datetime, now: datetime) -> Attempt:
    began = time.perf_counter()
    summary: dict[str, Any] = {}
    error = failure = None
    try:
        summary = _jsonable(job.run(engine, now))
    except Exception as exc:
        error = "".join(traceback.format_exception(exc))
        failure = failure_line(exc)
    seconds = time.perf_counter() - began
    outcome = Outcome.OK if error is None else Outcome.FAILED
    if error is None:
        _log.info("job %s ok in %.3fs: %s", job.name, seconds, json.dumps(summary))
        LAST_SUCCESS.labels(job.name).set(time.time())
    else:
        # One line that says it all; the traceback follows (and is in scheduler_runs.error).
        _log.error("job %s failed in %.3fs: %s", job.name, seconds, failure)
        _log.info("job %s traceback:\n%s", job.name, error.rstrip())
    RUNS.labels(job.name, outcome.value).inc()
    DURATION.labels(job.name).observe(seconds)
    due_in = max(job.interval - timedelta(seconds=seconds), timedelta(0))
    return Attempt(
        job.name, outcome, instance, due_in, started_at, now, seconds, summary, error, failure
    )


def _jsonable(summary: Mapping[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(dict(summary), default=str))
    return loaded


class Scheduler:
    """Runs ``jobs`` on ``engine`` until :meth:`stop` (see the module docstring).

    Each job has its own loop: attempt, then sleep until it is next due (by the shared
    cadence), or ``min(interval, 30 s)`` after a failed bookkeeping step (database down)
    or while another process holds it.
    """

    def __init__(
        self,
        engine: Engine,
        jobs: Iterable[Job],
        *,
        instance: str | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        self._jobs = list(jobs)
        self.instance = instance or default_instance()
        self._shutdown_timeout = shutdown_timeout
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Asks every loop to end; :meth:`run` returns once running jobs end (bounded)."""
        self._stop.set()

    async def run(self) -> None:
        """Runs the jobs until :meth:`stop` is called or this task is cancelled."""
        loops = [
            asyncio.create_task(self._loop(job), name=f"aeos-job-{job.name}") for job in self._jobs
        ]
        try:
            await self._stop.wait()
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _loop(self, job: Job) -> None:
        poll = min(job.interval, MAX_POLL)
        while True:
            thread = _in_thread(
                lambda: attempt(self._engine, job, instance=self.instance), f"aeos-job-{job.name}"
            )
            try:
                result = await asyncio.shield(thread)
            except asyncio.CancelledError:
                await self._wait_for(job, thread)
                raise
            except Exception:
                _log.exception("scheduler: could not run job %s; retrying in %s", job.name, poll)
                wait = poll
            else:
                wait = result.next_due_in
                if result.outcome is Outcome.NOT_DUE:
                    wait += _SLACK  # the clocks of the database and of this loop differ a bit
                elif result.outcome is Outcome.LOCKED and wait <= timedelta(0):
                    wait = poll  # it runs longer than its interval elsewhere
            await asyncio.sleep(wait.total_seconds())

    async def _wait_for(self, job: Job, thread: asyncio.Future[Attempt]) -> None:
        done, _ = await asyncio.wait({thread}, timeout=self._shutdown_timeout)
        if not done:
            _log.warning(
                "job %s still running after %.0fs; leaving it (its open transaction rolls "
                "back when the process exits)",
                job.name,
                self._shutdown_timeout,
            )
        elif not thread.cancelled() and thread.exception() is not None:
            _log.warning("job %s: %s", job.name, thread.exception())


def _in_thread(fn: Callable[[], Attempt], name: str) -> asyncio.Future[Attempt]:
    """Runs ``fn`` in a new daemon thread; the future settles on the calling loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Attempt] = loop.create_future()

    def settle(result: Attempt | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            assert result is not None
            future.set_result(result)

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:  # delivered to the awaiting coroutine
            error: BaseException | None = exc
            result = None
        else:
            error = None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future

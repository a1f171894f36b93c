"""TimescaleDB's background jobs (refresh and columnstore policies) as self-metrics.

TimescaleDB runs its policies in its own scheduler; a policy that fails (a refresh that
runs out of memory, a columnstore job that cannot lock a chunk, ...) only shows in
``timescaledb_information.job_stats`` and ``job_errors``, which nobody watches. The
service's ``timescale-jobs`` job reads them every minute (through ``aeos_timescale_jobs()``,
migration 0009) into the scheduler's metrics registry, which the query API serves at
``/metrics``; staff read the same rows in the view ``platform_timescale_jobs``. A failing
TimescaleDB job is reported, not raised: the check itself succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import Engine, text

from storage.jobs import _sql as q
from storage.jobs.scheduler import METRICS
from storage.tenancy import DbRole, Scope, act_as

_LABELS = ["job_id", "proc", "relation"]
FAILURES = Gauge(
    "aeos_timescaledb_job_failures",
    "Failed runs of each TimescaleDB job so far (job_stats.total_failures).",
    _LABELS,
    registry=METRICS,
)
LAST_RUN_OK = Gauge(
    "aeos_timescaledb_job_last_run_ok",
    "1 if the last run of the TimescaleDB job succeeded, 0 if it failed (absent: never ran).",
    _LABELS,
    registry=METRICS,
)
LAST_SUCCESS = Gauge(
    "aeos_timescaledb_job_last_success_timestamp_seconds",
    "When the TimescaleDB job last finished successfully, in Unix seconds.",
    _LABELS,
    registry=METRICS,
)
FAILING = Gauge(
    "aeos_timescaledb_jobs_failing",
    "TimescaleDB jobs whose last run failed.",
    registry=METRICS,
)


@dataclass(frozen=True, slots=True)
class TimescaleJob:
    """One TimescaleDB job and how its runs went."""

    job_id: int
    proc_name: str
    relation: str
    scheduled: bool
    last_run_status: str | None
    last_successful_finish: datetime | None
    total_runs: int
    total_failures: int
    last_error: str | None
    last_error_at: datetime | None

    @property
    def failing(self) -> bool:
        """Whether its last run failed."""
        return self.last_run_status == "Failed"


def timescale_jobs(engine: Engine) -> list[TimescaleJob]:
    """Every TimescaleDB job of the database (none on the PostgreSQL engine)."""
    with engine.begin() as conn:
        act_as(conn, Scope(DbRole.WORKER))
        return [TimescaleJob(*row) for row in conn.execute(text(q.TIMESCALE_JOBS))]


def check_timescale_jobs(engine: Engine, now: datetime) -> Mapping[str, Any]:
    """The ``timescale-jobs`` job: updates the metrics; returns the failing jobs."""
    jobs = timescale_jobs(engine)
    for job in jobs:
        labels = (str(job.job_id), job.proc_name, job.relation)
        FAILURES.labels(*labels).set(job.total_failures)
        if job.last_run_status is not None:
            LAST_RUN_OK.labels(*labels).set(0 if job.failing else 1)
        if job.last_successful_finish is not None:
            LAST_SUCCESS.labels(*labels).set(job.last_successful_finish.timestamp())
    failing = [j for j in jobs if j.failing]
    FAILING.set(len(failing))
    return {
        "jobs": len(jobs),
        "failing": [
            {
                "job_id": j.job_id,
                "proc": j.proc_name,
                "relation": j.relation,
                "error": j.last_error,
                "at": j.last_error_at,
            }
            for j in failing
        ],
    }

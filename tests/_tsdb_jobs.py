"""TimescaleDB's background jobs in the test harness: held back, then run on demand.

The template database has every job unscheduled (``alter_job(..., scheduled => false)``),
so in a clone nothing runs on its own and no result depends on the job scheduler's
timing. A test reaches the state "after every policy ran" by :func:`run_every_job`, which
runs each job of the database to completion with ``CALL run_job`` in dependency order:
the continuous aggregate refreshes (finer levels first), then the columnstore policies,
then whatever else exists (the job history retention). The telemetry reporter is left
out: it is TimescaleDB phoning home, not a policy on our data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

#: Who may never run in a test: it sends the server's statistics over the internet.
NOT_RUN = ("policy_telemetry",)
_ORDER = {"policy_refresh_continuous_aggregate": 0, "policy_compression": 1}

# Runs since ``since``: the template's scheduler ran some jobs (on no data) in the moment
# between their creation and their unscheduling; its clones inherit those stats.
JOBS = """
SELECT j.job_id, j.proc_name, coalesce(j.hypertable_name, '') AS relation,
       (s.last_run_started_at >= %(since)s) IS TRUE AS ran
  FROM timescaledb_information.jobs j
  LEFT JOIN timescaledb_information.job_stats s USING (job_id)
"""
UNSCHEDULE = "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"


@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: int
    proc_name: str
    relation: str
    ran: bool


def jobs(
    conn: psycopg.Connection[tuple[object, ...]], since: datetime | None = None
) -> list[JobRow]:
    """Every job of the database, in the order :func:`run_every_job` runs them (``ran``:
    the scheduler started it at or after ``since``)."""
    params = {"since": since or datetime.now(UTC)}
    rows = [JobRow(*r) for r in conn.execute(JOBS, params)]  # type: ignore[arg-type]
    return sorted(rows, key=lambda j: (_ORDER.get(j.proc_name, 2), j.job_id))


def unschedule_every_job(conninfo: str) -> None:
    """Keeps the scheduler from starting any job of the database on its own."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(UNSCHEDULE)


def settle_template(conninfo: str) -> None:
    """Makes a template's job state the same every run (call with its scheduler stopped).

    Between the migration creating the policies and their unscheduling, the scheduler may
    have run some of them on the empty database, or been stopped in the middle of one
    (recorded as failed). So every job runs once here, to completion, on the empty
    database, and the job statistics are cleared: every clone starts from one state,
    "no policy has run on any data", with no runs recorded.
    """
    run_every_job(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DELETE FROM _timescaledb_internal.bgw_job_stat_history")
        conn.execute("DELETE FROM _timescaledb_internal.bgw_job_stat")


def assert_no_job_ran(conninfo: str, since: datetime) -> None:
    """The "before any policy ran" state really is one: no job started since ``since``
    (the creation of the database)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        ran = [j for j in jobs(conn, since) if j.ran and j.proc_name not in NOT_RUN]
    assert not ran, f"background jobs ran on their own: {ran}"


def run_every_job(conninfo: str) -> int:
    """Runs every job of the database once, to completion; returns how many ran.

    ``CALL run_job`` runs a job in this session and raises its error (it does not record
    foreground runs in ``job_stats``).

    Raises:
        AssertionError: a job failed (naming it, its relation and its error).
    """
    with psycopg.connect(conninfo, autocommit=True) as conn:
        todo = [j for j in jobs(conn) if j.proc_name not in NOT_RUN]
        for job in todo:
            try:
                conn.execute("CALL run_job(%s)", [job.job_id])
            except psycopg.Error as exc:
                raise AssertionError(
                    f"job {job.job_id} ({job.proc_name} on {job.relation or '-'}) failed: "
                    f"{exc}".strip()
                ) from exc
    return len(todo)

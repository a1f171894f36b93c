"""The scheduler's bookkeeping: a job's advisory lock and its rows in ``scheduler_runs``.

Every query the scheduler runs is here, named. The lock functions work outside a
transaction (the lock belongs to the session); the others run in the caller's
transaction, which acts as ``aeos_worker`` (for ``latest_runs``, any role that reads
``scheduler_runs``: worker, staff or support); none of them switches roles.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from storage.jobs import _sql as q

_log = logging.getLogger("storage.jobs.scheduler")

#: First key of the two-key advisory locks of jobs ("AEOJ"); the second is the job's hash.
#: (The two-key space is apart from the one-key locks, such as the migrations' lock.)
LOCK_NAMESPACE = 0x4145_4F4A
KEEP_RUNS = timedelta(days=30)
ABANDONED = "the process running this job ended before it finished"


def lock_key(job: str) -> int:
    """The job's advisory lock key (a signed 32-bit integer), the same in every process."""
    return int.from_bytes(hashlib.sha256(job.encode()).digest()[:4], "big", signed=True)


def try_lock(conn: Connection, job: str) -> bool:
    """Takes the job's session-level lock if free; commits (no transaction stays open)."""
    got = conn.execute(text(q.TRY_LOCK), {"ns": LOCK_NAMESPACE, "key": lock_key(job)}).scalar_one()
    conn.commit()
    return bool(got)


def unlock(conn: Connection, job: str) -> None:
    """Releases the job's lock; a connection that cannot is dropped, never pooled."""
    try:
        conn.rollback()
        conn.execute(text(q.UNLOCK), {"ns": LOCK_NAMESPACE, "key": lock_key(job)})
        conn.commit()
    except Exception:  # a broken session holds no lock any more
        _log.warning("could not release the lock of job %s; dropping the connection", job)
        conn.invalidate()


def due_in(conn: Connection, job: str, interval: timedelta) -> timedelta:
    """How long until the job is due: its last start by anyone plus ``interval``."""
    row = conn.execute(text(q.LAST_START), {"job": job}).one()
    if row.last is None:
        return timedelta(0)
    remaining: timedelta = row.last + interval - row.now
    return max(remaining, timedelta(0))


def close_abandoned(conn: Connection, job: str) -> None:
    """Closes as failed the runs a dead process left ``running`` (call holding the lock)."""
    conn.execute(text(q.CLOSE_ABANDONED), {"job": job, "error": ABANDONED})


def start(conn: Connection, job: str, instance: str) -> datetime:
    """Records that ``instance`` starts the job now; returns the start (database clock)."""
    started_at: datetime = conn.execute(
        text(q.START), {"job": job, "instance": instance}
    ).scalar_one()
    return started_at


def finish(
    conn: Connection,
    job: str,
    started_at: datetime,
    status: str,
    summary: Mapping[str, Any],
    error: str | None,
    failure: str | None = None,
) -> None:
    """Records how the run ended (a failure: its traceback and its one line), and forgets
    the job's runs older than ``KEEP_RUNS``."""
    conn.execute(
        text(q.FINISH),
        {
            "status": status,
            "summary": json.dumps(summary),
            "error": error,
            "failure": failure,
            "job": job,
            "started_at": started_at,
        },
    )
    conn.execute(text(q.FORGET_OLD), {"job": job, "keep": KEEP_RUNS})


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's latest run (by any process) and its latest successful end."""

    job: str
    started_at: datetime
    instance: str
    finished_at: datetime | None
    status: str
    summary: Mapping[str, Any]
    error: str | None
    #: One line: what failed, on which relation, and why (None: the run did not fail).
    failure: str | None
    last_success_at: datetime | None


def latest_runs(conn: Connection) -> dict[str, JobStatus]:
    """The latest run of every job ever run, by job name (``conn`` scoped by the caller)."""
    return {row.job: JobStatus(*row) for row in conn.execute(text(q.LATEST))}

"""Named statements of the org overview besides the rollups (task runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from storage.schema import task_runs


def task_runs_by_status(start: datetime, end: datetime) -> Select[Any]:
    """Task runs started in ``[start, end)`` per status."""
    t = task_runs
    return (
        select(t.c.status, func.count().label("n"))
        .where(t.c.started_at >= start, t.c.started_at < end)
        .group_by(t.c.status)
    )

"""What every pruning step shares: its transaction, its lock timeout, its export files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from storage.retention import _sql as q
from storage.tenancy import DbRole, Scope, act_as

_LOCK_NOT_AVAILABLE = "55P03"


class HasFiles(Protocol):
    """A report that lists the files its steps wrote."""

    files: list[Path]


@contextmanager
def worker_transaction(engine: Engine, lock_timeout: str) -> Iterator[Connection]:
    """A short transaction as ``aeos_worker``, in UTC, waiting at most ``lock_timeout``."""
    with engine.begin() as conn:
        act_as(conn, Scope(DbRole.WORKER))
        conn.execute(text(q.set_lock_timeout(lock_timeout)))
        conn.execute(text(q.SET_UTC))
        yield conn


def lock_timeout(exc: DBAPIError) -> bool:
    """Whether the statement failed because a lock was not free within the timeout."""
    return getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE


@contextmanager
def exporting(report: HasFiles) -> Iterator[list[Path | None]]:
    """Collects the files a step writes; keeps them if the step commits, else removes them."""
    written: list[Path | None] = []
    try:
        yield written
    except BaseException:
        for path in written:
            if path is not None:
                path.unlink(missing_ok=True)
        raise
    report.files.extend(p for p in written if p is not None)

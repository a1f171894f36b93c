"""One transaction scoped to a role and org: the only way readers get a connection.

Readers (``storage.read``), the query API and the alerting engine never call
:func:`~storage.tenancy.act_as` themselves: they take the connection this helper yields,
already switched to exactly one role (and, for tenants, one org) for the whole
transaction. A request therefore cannot escalate halfway through, and the database, not
the caller, decides what it may see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from storage.errors import DatabaseUnavailableError, StorageError, classify
from storage.tenancy import Scope, act_as


@contextmanager
def scoped_transaction(engine: Engine, scope: Scope) -> Iterator[Connection]:
    """Opens a transaction acting as ``scope``; commits on success, rolls back otherwise.

    Database errors are turned into the storage error classes once, here:

    Raises:
        DatabaseUnavailableError: the server cannot be reached (retryable).
        ConcurrencyError: a serialization failure or a deadlock (retryable).
        AccessDeniedError: the scoped role lacks a privilege (permanent).
        RefusedDataError: the database refuses the data (permanent).
    """
    try:
        with engine.begin() as conn:
            act_as(conn, scope)
            yield conn
    except DBAPIError as exc:
        raise classify_database_error(exc) from exc


def classify_database_error(exc: DBAPIError) -> StorageError | DBAPIError:
    """The storage error class for a driver error, or the error itself if it is a bug.

    The classification itself is :func:`storage.errors.classify` (one place for the
    read and the ingest side).
    """
    classified = classify(exc.orig) if exc.orig is not None else None
    if classified is not None:
        return classified
    if isinstance(exc, OperationalError):
        return DatabaseUnavailableError(f"database unavailable: {exc.orig}")
    return exc

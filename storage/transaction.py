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

import psycopg.errors as pg_errors
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from storage.errors import (
    AccessDeniedError,
    ConcurrencyError,
    DatabaseUnavailableError,
    InvalidInputError,
    StorageError,
)
from storage.tenancy import Scope, act_as

_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
# A write in a read-only transaction (the API's view scope) is refused like a privilege.
_DENIED = (pg_errors.InsufficientPrivilege, pg_errors.ReadOnlySqlTransaction)


@contextmanager
def scoped_transaction(engine: Engine, scope: Scope) -> Iterator[Connection]:
    """Opens a transaction acting as ``scope``; commits on success, rolls back otherwise.

    Database errors are turned into the storage error classes once, here:

    Raises:
        DatabaseUnavailableError: the server cannot be reached (retryable).
        ConcurrencyError: a serialization failure or a deadlock (retryable).
        AccessDeniedError: the scoped role lacks a privilege (permanent).
    """
    try:
        with engine.begin() as conn:
            act_as(conn, scope)
            yield conn
    except DBAPIError as exc:
        raise classify_database_error(exc) from exc


def classify_database_error(exc: DBAPIError) -> StorageError | DBAPIError:
    """The storage error class for a driver error, or the error itself if it is a bug."""
    orig = exc.orig
    if isinstance(orig, _RETRYABLE):
        return ConcurrencyError(f"retry: {type(orig).__name__}: {orig}")
    if isinstance(orig, _DENIED):
        return AccessDeniedError(f"access denied: {orig}")
    if isinstance(exc, OperationalError) or isinstance(orig, pg_errors.OperationalError):
        return DatabaseUnavailableError(f"database unavailable: {orig}")
    if isinstance(orig, pg_errors.DataError):
        # SQLSTATE class 22 (and psycopg's own refusal of NUL in text): a value the caller
        # gave cannot be used as asked; the request, not the service, is at fault.
        return InvalidInputError(f"invalid value: {orig}")
    return exc

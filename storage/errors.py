"""Errors the storage layer raises, classified once so callers can map them.

``Retryable`` errors (database unreachable, serialization failures, a full queue) mean
"try again later"; ``Permanent`` ones (bad input, a conflict with existing data) do not.
The receiver and the API translate the two classes into gRPC codes and HTTP statuses in
one place each.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error the storage layer raises on purpose."""


class RetryableStorageError(StorageError):
    """The operation may succeed later (database down, overload, serialization failure)."""


class PermanentStorageError(StorageError):
    """The operation will fail again with the same input."""


class NotFoundError(PermanentStorageError):
    """A named object (org, key, rule, ...) does not exist."""


class ConflictError(PermanentStorageError):
    """The object already exists (for example a duplicate org name)."""


class InvalidInputError(PermanentStorageError):
    """The input is not acceptable (for example an unknown plan or role)."""


class DatabaseUnavailableError(RetryableStorageError):
    """The database cannot be reached."""


class EmbeddedDatabaseError(StorageError):
    """The embedded PostgreSQL server could not be set up or started."""


class MigrationError(StorageError):
    """The schema could not be brought up to date."""


class ConcurrencyError(RetryableStorageError):
    """A serialization failure or deadlock: the same transaction may succeed if retried."""


class AccessDeniedError(PermanentStorageError):
    """The scoped role may not do this (insufficient privilege, or a row-security refusal)."""


class RefusedDataError(PermanentStorageError):
    """The database refuses the rows themselves (a value out of range, too large for an
    index, a constraint, an encoding): the same rows will always be refused."""


#: SQLSTATE classes (PostgreSQL appendix A) whose errors are caused by the data sent:
#: 22 data exception (out of range, bad encoding, ...), 23 integrity constraint violation,
#: 54 program limit exceeded (an index row over the btree limit, too many columns).
REFUSED_CLASSES = frozenset({"22", "23", "54"})
#: Classes that mean the server cannot do the work now: 08 connection exception,
#: 53 insufficient resources, 57 operator intervention (shutdown, statement timeout),
#: 58 system error (I/O), XX internal error.
UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58", "XX"})
CONCURRENCY_STATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
# Insufficient privilege (and row security); a write in a read-only transaction (the
# API's view scope) is refused like a privilege.
DENIED_STATES = frozenset({"42501", "25006"})


def classify(exc: BaseException) -> StorageError | None:
    """The storage error class of a driver (psycopg) error, decided by its cause.

    The one classifier of database errors (the read side reaches it through
    ``storage.transaction.classify_database_error``). The SQLSTATE decides, not the
    driver's exception class: psycopg files SQLSTATE class 54 (an index row too large)
    under ``OperationalError``, which would read a refused row as an outage.

    Returns:
        ``RefusedDataError`` for data the server refuses (and for values the driver cannot
        encode), ``ConcurrencyError``, ``AccessDeniedError``, ``DatabaseUnavailableError``
        for an outage, or None when ``exc`` is not a database error we can classify (a bug).
    """
    import psycopg  # here: storage.errors is imported by modules that need no driver

    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    if state in CONCURRENCY_STATES:
        return ConcurrencyError(f"retry: {message}")
    if state in DENIED_STATES:
        return AccessDeniedError(f"access denied: {message}")
    if state[:2] in REFUSED_CLASSES:
        return RefusedDataError(f"the database refused the data: {message}")
    if state[:2] in UNAVAILABLE_CLASSES or isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailableError(f"database unavailable: {message}")
    if not state and isinstance(exc, psycopg.DataError | psycopg.ProgrammingError):
        # Raised by the driver itself while encoding a value (no SQLSTATE): the data.
        return RefusedDataError(f"the data cannot be sent to the database: {message}")
    if not state and isinstance(exc, psycopg.InterfaceError):
        return DatabaseUnavailableError(f"database connection lost: {message}")
    return None


class JobStepError(StorageError):
    """A step of a periodic job failed: what it was doing, on which relation, and why.

    ``str()`` is one line, for logs, ``scheduler_runs.failure`` and the CLI; the database
    error it wraps is its ``__cause__``.
    """

    def __init__(self, job: str, step: str, relation: str, cause: BaseException) -> None:
        self.job = job
        self.step = step
        self.relation = relation
        self.reason = failure_line(cause)
        super().__init__(f"{job}: {step} {relation} failed: {self.reason}")


def failure_line(exc: BaseException) -> str:
    """One line saying why ``exc`` happened: a step's own message, or the database's
    (SQLSTATE class name and primary message, with the relation when the server names
    one), or the exception's type and first line."""
    if isinstance(exc, JobStepError):
        return str(exc)
    orig = getattr(exc, "orig", None)  # a SQLAlchemy DBAPIError wraps the driver's error
    if orig is None and exc.__cause__ is not None and not str(exc).strip():
        orig = exc.__cause__
    diag = getattr(orig, "diag", None)
    if orig is not None and diag is not None and diag.message_primary:
        where = f" (relation {diag.schema_name}.{diag.table_name})" if diag.table_name else ""
        return f"{type(orig).__name__}: {diag.message_primary}{where}"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__

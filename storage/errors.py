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

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

"""Database errors classified by cause, in one place (issue 9, finding 2)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as e

from storage.errors import (
    AccessDeniedError,
    ConcurrencyError,
    DatabaseUnavailableError,
    RefusedDataError,
    classify,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (e.ProgramLimitExceeded("index row size 6016 exceeds btree maximum"), RefusedDataError),
        (e.NumericValueOutOfRange("numeric field overflow"), RefusedDataError),
        (e.CharacterNotInRepertoire("invalid byte sequence"), RefusedDataError),
        (e.CheckViolation("new row violates check constraint"), RefusedDataError),
        (
            psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
            RefusedDataError,
        ),
        (e.AdminShutdown("terminating connection"), DatabaseUnavailableError),
        (e.DiskFull("could not extend file"), DatabaseUnavailableError),
        (
            e.QueryCanceled("canceling statement due to statement timeout"),
            DatabaseUnavailableError,
        ),
        (psycopg.OperationalError("connection refused"), DatabaseUnavailableError),
        (e.SerializationFailure("could not serialize"), ConcurrencyError),
        (e.InsufficientPrivilege("permission denied"), AccessDeniedError),
        (e.ReadOnlySqlTransaction("read-only transaction"), AccessDeniedError),
    ],
)
def test_the_sqlstate_decides(error: Exception, kind: type[Exception]) -> None:
    assert type(classify(error)) is kind


def test_an_index_row_too_large_is_not_an_outage() -> None:
    """psycopg files SQLSTATE 54000 under OperationalError; that must not read as down."""
    error = e.ProgramLimitExceeded("index row size 6016 exceeds btree version 4 maximum 2704")
    assert isinstance(error, psycopg.OperationalError)
    classified = classify(error)
    assert isinstance(classified, RefusedDataError)
    assert "index row size" in str(classified)


def test_bugs_are_not_classified() -> None:
    assert classify(e.UndefinedColumn("column does not exist")) is None
    assert classify(ValueError("not a database error")) is None

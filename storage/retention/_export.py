"""Parquet files of the rows retention prunes, written before the prune commits.

Each file is complete and durable before the transaction that deletes (or drops) its rows
commits: it is written under a temporary name, flushed to disk, renamed, and the directory
entry is flushed too. A run writes into a directory of its own, named after the run's
clock and a random suffix, so that runs never overwrite each other; inside it, a relation
gets one file per delete batch or dropped partition/chunk (``spans.00001.parquet``, ...).

Column types (same names as in the database):

==============================  ==========================================
PostgreSQL                      Arrow
==============================  ==========================================
bytea                           binary
text, varchar                   string
uuid                            string (canonical text form)
jsonb, json                     string (the JSON text)
timestamptz                     timestamp[us, tz=UTC]
timestamp                       timestamp[us]
date                            date32
numeric(p, s)                   decimal128(p, s) (decimal256 above 38 digits)
numeric (no precision)          string (exact decimal text)
smallint / integer / bigint     int16 / int32 / int64
real / double precision         float32 / float64
boolean                         bool
one-dimensional arrays          list of the element type
anything else                   string (PostgreSQL's text form)
==============================  ==========================================
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_SCALARS: dict[str, pa.DataType] = {
    "bytea": pa.binary(),
    "text": pa.string(),
    "character varying": pa.string(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp without time zone": pa.timestamp("us"),
    "date": pa.date32(),
    "boolean": pa.bool_(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
}
_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
_MAX_DECIMAL128_DIGITS = 38


@dataclass(frozen=True, slots=True)
class ExportColumn:
    """A column as selected for export: the SQL that reads it and its Arrow type."""

    name: str
    select: str
    arrow_type: pa.DataType


def export_column(name: str, pg_type: str) -> ExportColumn:
    """How to read and store a column of type ``pg_type`` (``format_type`` output)."""
    quoted = '"' + name.replace('"', '""') + '"'
    is_array = pg_type.endswith("[]")
    element = pg_type.removesuffix("[]")
    arrow, as_text = _scalar(element)
    if as_text:
        cast = "::text[]" if is_array else "::text"
        select = f"r.{quoted}{cast} AS {quoted}"
    else:
        select = f"r.{quoted}"
    return ExportColumn(name, select, pa.list_(arrow) if is_array else arrow)


def _scalar(pg_type: str) -> tuple[pa.DataType, bool]:
    """The Arrow type of a scalar, and whether PostgreSQL must cast the value to text."""
    if pg_type in _SCALARS:
        return _SCALARS[pg_type], False
    numeric = _NUMERIC.fullmatch(pg_type.replace(" ", ""))
    if numeric:
        precision, scale = int(numeric[1]), int(numeric[2])
        if precision <= _MAX_DECIMAL128_DIGITS:
            return pa.decimal128(precision, scale), False
        return pa.decimal256(precision, scale), False
    return pa.string(), True


class ExportError(Exception):
    """A Parquet file could not be written (the rows it was for are not pruned)."""


class ParquetExport:
    """The Parquet files of one retention run, in a directory of their own."""

    def __init__(self, base: Path, now: datetime) -> None:
        """Creates ``base/retention-<UTC time>-<random>/``.

        Raises:
            ExportError: the directory cannot be created.
        """
        name = f"retention-{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}"
        self.directory = base / name
        try:
            self.directory.mkdir(parents=True)
        except OSError as exc:
            raise ExportError(
                f"cannot create the export directory {self.directory}: {exc}"
            ) from exc
        self._sequence: dict[str, int] = {}

    def write(
        self, relation: str, columns: Sequence[ExportColumn], chunks: Iterable[Sequence[Any]]
    ) -> tuple[Path | None, int]:
        """Writes rows (tuples in ``columns`` order, in chunks) to a new file of ``relation``.

        Returns:
            The file, durable on disk, and the number of rows in it; no file if there were
            no rows.

        Raises:
            ExportError: the file could not be written; no part of it is left behind.
        """
        number = self._sequence.get(relation, 0) + 1
        self._sequence[relation] = number
        final = self.directory / f"{relation}.{number:05d}.parquet"
        temporary = self.directory / f".{final.name}.tmp"
        schema = pa.schema([pa.field(c.name, c.arrow_type) for c in columns])
        try:
            rows = _write_file(temporary, schema, chunks)
            if not rows:
                temporary.unlink()
                self._sequence[relation] = number - 1
                return None, 0
            os.replace(temporary, final)
            _fsync_directory(self.directory)
        except (OSError, pa.ArrowException) as exc:
            temporary.unlink(missing_ok=True)
            raise ExportError(f"cannot write {final}: {exc}") from exc
        return final, rows


def _write_file(path: Path, schema: pa.Schema, chunks: Iterable[Sequence[Any]]) -> int:
    rows = 0
    with open(path, "wb") as sink:
        with pq.ParquetWriter(sink, schema) as writer:
            for chunk in chunks:
                if chunk:
                    writer.write_table(_table(schema, chunk))
                    rows += len(chunk)
        sink.flush()
        os.fsync(sink.fileno())
    return rows


def _table(schema: pa.Schema, rows: Sequence[Any]) -> pa.Table:
    arrays = [pa.array([row[i] for row in rows], type=field.type) for i, field in enumerate(schema)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

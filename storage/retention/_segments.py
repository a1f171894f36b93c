"""Pruning rows inside the chunks of a hypertable (TimescaleDB), one segment at a time.

A chunk that holds rows of several orgs, some outside their window, cannot be dropped
whole. Its rows are usually compressed: every raw window (3 days and up) is longer than
the compression age (2 days), and the columnstore is segmented by ``org_id``. A compressed
chunk has no ``ctid`` to batch on ("transparent decompression only supports tableoid
system column"), and a ``DELETE`` whose filters the columnstore cannot read decompresses
the whole chunk (by default failing past 100 000 rows,
``timescaledb.max_tuples_decompressed_per_dml_transaction``).

So a batch here is a *segment*: one org's rows in one chunk, before the cutoff. Its
``DELETE`` filters on the segment-by column with a constant (``org_id = $1``) and on the
time range (the order-by column), so the columnstore deletes every compressed batch that
lies wholly inside the range without decompressing it, decompresses only the batches that
straddle the cutoff (at most one per segment, since batches are ordered by time), and
deletes rowstore rows (late arrivals, chunks not yet compressed) as usual. Measured on a
compressed 1 M-row chunk of 50 orgs (``bench/tsdb_compressed.py``, a loaded 2-core
machine): one org's day (20 000 rows) goes in 0.25 s (0.9 s with its Parquet export),
against 42 s to decompress the chunk, delete and compress it again, which also holds an
exclusive lock on the chunk meanwhile. The remainder of a straddling batch stays in the
rowstore until the columnstore policy recompresses the chunk.

Such a ``DELETE`` reports no row count for batches deleted whole, and ``RETURNING``
would make it decompress them; so each step locks the chunk against writes (share mode),
counts (or exports) the segment, then deletes it, in one short transaction. The plan must
be a custom one: a generic plan hides the constants from the columnstore and decompresses
everything.
"""

from __future__ import annotations

import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from storage.retention import _sql as q
from storage.retention._export import ExportColumn, ParquetExport
from storage.retention._steps import exporting, lock_timeout, worker_transaction
from storage.retention._targets import Target

if TYPE_CHECKING:
    from storage.retention._prune import RelationReport

SEGMENT_LOCK_TIMEOUT = "5s"
EXPORT_FETCH_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Segment:
    """The rows of one org (None: a relation without ``org_id``) in ``[lo, hi)`` of a chunk."""

    chunk: str
    org_id: uuid.UUID | None
    lo: Any
    hi: Any


def delete_by_segment(
    engine: Engine,
    target: Target,
    cutoff: datetime,
    orgs: tuple[uuid.UUID, ...],
    export: ParquetExport | None,
    columns: list[ExportColumn],
    report: RelationReport,
) -> None:
    """Deletes the rows of ``orgs`` before ``cutoff``, one segment per transaction.

    Stops (reporting the rest as busy) at the first segment whose chunk is locked.
    """
    try:
        segments = _segments(engine, target, cutoff, orgs)
    except DBAPIError as exc:
        if not lock_timeout(exc):
            raise
        report.busy.append(f"rows before {cutoff.isoformat()}")
        return
    for segment in segments:
        try:
            with (
                exporting(report) as written,
                worker_transaction(engine, SEGMENT_LOCK_TIMEOUT) as conn,
            ):
                rows, path = _prune_segment(conn, target, segment, export, columns)
                written.append(path)
        except DBAPIError as exc:
            if not lock_timeout(exc):
                raise
            report.busy.append(f"rows before {cutoff.isoformat()} from {segment.chunk}")
            return
        if rows:
            report.batches += 1
            report.rows[segment.org_id] = report.rows.get(segment.org_id, 0) + rows


def _segments(
    engine: Engine, target: Target, cutoff: datetime, orgs: tuple[uuid.UUID, ...]
) -> list[Segment]:
    """The segments with rows to go, chunk by chunk, oldest first."""
    assert target.hypertable is not None
    schema, name = target.hypertable
    found: list[Segment] = []
    with worker_transaction(engine, SEGMENT_LOCK_TIMEOUT) as conn:
        chunks = conn.execute(
            text(q.CHUNKS_BEFORE), {"schema": schema, "name": name, "cutoff": cutoff}
        ).all()
        for chunk in chunks:
            lo = target.cutoff_value(chunk.range_start)
            hi = target.cutoff_value(min(chunk.range_end, cutoff))
            if target.per_org:
                sql = q.segment_orgs(target.rows_in, _where(target))
                params = {"orgs": list(orgs), "lo": lo, "hi": hi}
                with_rows = sorted(conn.execute(text(sql), params).scalars(), key=str)
                found += [Segment(chunk.name, org, lo, hi) for org in with_rows]
            else:
                found.append(Segment(chunk.name, None, lo, hi))
    return found


def _where(target: Target, *, one_org: bool = False) -> str:
    return q.segment_where(target.time_column, per_org=target.per_org, one_org=one_org)


def _prune_segment(
    conn: Connection,
    target: Target,
    segment: Segment,
    export: ParquetExport | None,
    columns: list[ExportColumn],
) -> tuple[int, Any]:
    """Counts or exports the segment, then deletes it; returns (rows, file or None)."""
    # Constants, not parameters, for the columnstore's batch filters (see the docstring).
    for setting in q.SEGMENT_SETTINGS:
        conn.execute(text(setting))
    conn.execute(text(q.RETENTION_LOCK), {"child": segment.chunk})
    where = _where(target, one_org=True)
    params = {"org": segment.org_id, "lo": segment.lo, "hi": segment.hi}
    path = None
    if export is None:
        rows = conn.execute(text(q.count_where(target.rows_in, where)), params).scalar_one()
    else:
        selected = ", ".join(c.select for c in columns)
        result = conn.execute(
            text(q.select_where(target.rows_in, selected, where)),
            params,
            execution_options={"yield_per": EXPORT_FETCH_ROWS},
        )
        with closing(result):
            path, rows = export.write(target.relation, columns, result.partitions())
    if rows:
        conn.execute(text(q.delete_where(target.rows_in, where)), params)
    return int(rows), path

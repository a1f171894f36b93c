"""Pruning one relation: whole expired partitions or chunks first, then bounded batches.

Every step is its own short transaction acting as ``aeos_worker``, with a lock timeout:
a drop that cannot get its lock quickly is reported as busy and left for the next run,
instead of queueing every reader of the table behind it. With an export, a step's
Parquet file is durable before the step commits; if the commit fails the file is removed,
so the files hold exactly the rows that are gone.
"""

from __future__ import annotations

import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from storage.retention import _sql as q
from storage.retention._export import ExportColumn, ParquetExport, export_column
from storage.retention._segments import delete_by_segment
from storage.retention._steps import exporting as _exporting
from storage.retention._steps import lock_timeout as _lock_timeout
from storage.retention._steps import worker_transaction as _worker
from storage.retention._targets import Child, RelationKind, Target, expired_children

DROP_LOCK_TIMEOUT = "2s"
DELETE_LOCK_TIMEOUT = "5s"
EXPORT_FETCH_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What may go from one relation."""

    target: Target
    #: Cutoff -> the orgs whose rows older than it go (empty tuple: a relation without
    #: ``org_id``, pruned as a whole).
    groups: dict[datetime, tuple[uuid.UUID, ...]]
    #: Partitions or chunks whose whole range ends by then are dropped (None: none are).
    drop_before: datetime | None


@dataclass(frozen=True, slots=True)
class DroppedChild:
    """A partition or chunk dropped whole (or, in a dry run, that would be)."""

    name: str
    range_start: datetime
    range_end: datetime
    #: Rows it held, when known (counted while exporting them).
    rows: int | None = None


@dataclass(slots=True)
class RelationReport:
    """What happened to one relation in a run."""

    relation: str
    data_class: str
    kind: str
    #: Org id (None: a relation without ``org_id``) -> rows deleted in batches. In a dry
    #: run: every row that would go, including those of partitions or chunks to drop.
    rows: dict[uuid.UUID | None, int] = field(default_factory=dict)
    batches: int = 0
    dropped: list[DroppedChild] = field(default_factory=list)
    #: Partitions or chunks (or rows of a window) left for the next run: their lock was
    #: not free within the lock timeout.
    busy: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: str | None = None


def prune(
    engine: Engine,
    plan: PrunePlan,
    *,
    dry_run: bool,
    export: ParquetExport | None,
    batch_size: int,
) -> RelationReport:
    """Prunes (or, with ``dry_run``, measures) one relation according to ``plan``.

    Raises:
        ExportError: a Parquet file could not be written; its rows are still there.
    """
    target = plan.target
    report = RelationReport(target.relation, target.data_class, target.kind.value)
    if target.skip is not None:
        report.skipped = target.skip
        return report
    with _worker(engine, DELETE_LOCK_TIMEOUT) as conn:
        children = expired_children(conn, target, plan.drop_before) if plan.drop_before else []
        columns = _columns(conn, target) if export is not None else []
    if dry_run:
        report.dropped = [DroppedChild(c.name, c.range_start, c.range_end) for c in children]
        report.rows = _count(engine, plan)
        return report
    for i, child in enumerate(children):
        if not _drop(engine, plan, child, export, columns, report):
            # Whatever held that lock (a long query on the table) holds the others too.
            report.busy.extend(c.name for c in children[i:])
            break
    for cutoff, orgs in plan.groups.items():
        if target.hypertable is not None:  # chunks may be compressed: no ctid to batch on
            delete_by_segment(engine, target, cutoff, orgs, export, columns, report)
        else:
            _delete_in_batches(engine, target, cutoff, orgs, export, columns, batch_size, report)
    return report


def _columns(conn: Connection, target: Target) -> list[ExportColumn]:
    rows = conn.execute(text(q.COLUMNS), {"rel": target.rows_in}).all()
    return [export_column(name, pg_type) for name, pg_type in rows]


def _where(target: Target, *, dry_run: bool = False) -> str:
    return q.expired_where(
        target.time_column,
        per_org=target.per_org,
        whole_traces=target.relation == "traces",
        dry_run=dry_run,
    )


def _params(target: Target, cutoff: datetime, orgs: tuple[uuid.UUID, ...]) -> dict[str, Any]:
    return {"cutoff": target.cutoff_value(cutoff), "orgs": list(orgs)}


def _count(engine: Engine, plan: PrunePlan) -> dict[uuid.UUID | None, int]:
    target = plan.target
    org = "r.org_id" if target.per_org else "NULL::uuid"
    sql = text(q.count_expired(target.rows_in, org, _where(target, dry_run=True)))
    counts: dict[uuid.UUID | None, int] = {}
    with _worker(engine, DELETE_LOCK_TIMEOUT) as conn:
        for cutoff, orgs in plan.groups.items():
            for row in conn.execute(sql, _params(target, cutoff, orgs)):
                counts[row.org_id] = row.n
    return counts


def _delete_in_batches(
    engine: Engine,
    target: Target,
    cutoff: datetime,
    orgs: tuple[uuid.UUID, ...],
    export: ParquetExport | None,
    columns: list[ExportColumn],
    batch_size: int,
    report: RelationReport,
) -> None:
    where = _where(target)
    returning = ", ".join(
        ["r.org_id" if target.per_org else "NULL::uuid", *(c.select for c in columns)]
    )
    sql = text(q.delete_batch(target.rows_in, where, returning))
    params = {**_params(target, cutoff, orgs), "n": batch_size}
    while True:
        try:
            with _exporting(report) as written, _worker(engine, DELETE_LOCK_TIMEOUT) as conn:
                rows = conn.execute(sql, params).all()
                if export is not None and rows:
                    path, _ = export.write(target.relation, columns, [[r[1:] for r in rows]])
                    written.append(path)
        except DBAPIError as exc:
            if not _lock_timeout(exc):
                raise
            report.busy.append(f"rows before {cutoff.isoformat()}")
            return
        if rows:
            report.batches += 1
            for org_id, n in Counter(r[0] for r in rows).items():
                report.rows[org_id] = report.rows.get(org_id, 0) + n
        if len(rows) < batch_size:
            return


def _drop(
    engine: Engine,
    plan: PrunePlan,
    child: Child,
    export: ParquetExport | None,
    columns: list[ExportColumn],
    report: RelationReport,
) -> bool:
    """Drops one child (exporting its rows first); False if its lock was not free."""
    target = plan.target
    rows: int | None = None
    try:
        with _exporting(report) as written, _worker(engine, DROP_LOCK_TIMEOUT) as conn:
            if export is not None:
                rows = _export_child(conn, target, child, export, columns, written)
            if target.kind is RelationKind.PARTITIONED:
                conn.execute(
                    text(q.DROP_PARTITION),
                    {"rel": target.relation, "child": child.name, "before": plan.drop_before},
                )
            else:
                conn.execute(
                    text(q.DROP_CHUNKS),
                    {"rel": target.relation, "lo": child.range_start, "hi": child.range_end},
                )
    except DBAPIError as exc:
        if not _lock_timeout(exc):
            raise
        return False
    report.dropped.append(DroppedChild(child.name, child.range_start, child.range_end, rows))
    return True


def _export_child(
    conn: Connection,
    target: Target,
    child: Child,
    export: ParquetExport,
    columns: list[ExportColumn],
    written: list[Path | None],
) -> int:
    # No writes into the child from here to the drop: the file holds what is dropped.
    conn.execute(text(q.RETENTION_LOCK), {"child": child.qualified})
    select = ", ".join(c.select for c in columns)
    result = conn.execute(
        text(q.select_range(target.rows_in, select, target.time_column)),
        {"lo": child.range_start, "hi": child.range_end},
        execution_options={"yield_per": EXPORT_FETCH_ROWS},
    )
    with closing(result):
        path, rows = export.write(target.relation, columns, result.partitions())
    written.append(path)
    return rows

"""Retention by plan tier: each org keeps each data class for its window, no longer.

An org's window for a data class is the days of its plan (``retention_tiers``) unless
``orgs.retention_overrides`` names the class. A row is inside the window when its time is
at or after ``now - days``; a rollup row covers its whole bucket, so it is inside as long
as any part of its bucket is (``cost_daily``: a UTC day).

The rules a run follows:

- Nothing inside an org's window is ever deleted.
- A whole partition (PostgreSQL engine) or chunk (TimescaleDB) is dropped only when its
  whole time range ends by the *earliest* cutoff over every org, i.e. every row it could
  hold is outside the longest window any org has for that class. Which orgs have rows in
  it is not looked at: every org counts. Without any org, nothing is dropped.
- Everything else goes in bounded batches, per group of orgs with the same window, each
  batch its own short transaction (``DELETE ... WHERE (tableoid, ctid) IN (SELECT ...
  LIMIT n)``), so a run never holds long locks.
- Relations without ``org_id`` (``platform_red_*``) are pruned by the longest window any
  org has for their class. A run restricted to one org touches only that org's rows: it
  drops nothing whole and leaves such relations alone.
- A trace summary goes when it is outside the window and no span of its trace is left.
- Rows of an org id that is not in ``orgs`` (a deleted org) go only with whole
  partitions or chunks, never from plain tables.

Relations are discovered at run time; one named in ``RETENTION_CLASSES`` that does not
exist (yet) is reported as skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError

from storage.errors import (
    InvalidInputError,
    JobStepError,
    NotFoundError,
    RetryableStorageError,
    StorageError,
)
from storage.jobs.rollup_folds import fold_rollups
from storage.migrate import recorded_engine
from storage.retention import _sql as q
from storage.retention._export import ExportError, ParquetExport
from storage.retention._prune import DroppedChild, PrunePlan, RelationReport, prune
from storage.retention._targets import Target, find_targets
from storage.schema import MAX_RETENTION_DAYS, RETENTION_CLASSES, orgs, retention_tiers
from storage.tenancy import DbRole, Scope, act_as

DEFAULT_BATCH_SIZE = 5_000
RETENTION_LOCK_KEY = 0x4145_5254  # "AERT"
_RESOLUTION = timedelta(microseconds=1)
DATA_CLASSES = tuple(RETENTION_CLASSES)

__all__ = [
    "DATA_CLASSES",
    "DEFAULT_BATCH_SIZE",
    "DroppedChild",
    "OrgWindows",
    "RelationReport",
    "RetentionBusyError",
    "RetentionExportError",
    "RetentionReport",
    "load_windows",
    "merge_overrides",
    "run_retention",
    "validate_overrides",
]


class RetentionBusyError(RetryableStorageError):
    """Another run that changes data holds the retention lock of this database."""


class RetentionExportError(StorageError):
    """A Parquet file could not be written; the rows it was for were not pruned.

    ``report`` tells what the run had done before (every pruned row is in a file).
    """

    def __init__(self, message: str, report: RetentionReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class OrgWindows:
    """An org's retention: its plan, its overrides and the days it keeps per data class."""

    org_id: uuid.UUID
    name: str
    plan: str
    overrides: Mapping[str, int]
    #: Effective days per data class; a class missing here is kept forever.
    days: Mapping[str, int]


def validate_overrides(raw: Mapping[str, object]) -> dict[str, int]:
    """Checks per-org overrides: known data classes, whole days from 1 to 36500.

    Raises:
        InvalidInputError: naming the first problem found.
    """
    clean: dict[str, int] = {}
    for name, value in raw.items():
        if name not in RETENTION_CLASSES:
            raise InvalidInputError(
                f"unknown data class {name!r}; expected one of {', '.join(DATA_CLASSES)}"
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"{name}: {value!r} is not a whole number of days")
        if not 1 <= value <= MAX_RETENTION_DAYS:
            raise InvalidInputError(f"{name}: {value} days is outside 1..{MAX_RETENTION_DAYS}")
        clean[name] = value
    return clean


def merge_overrides(
    current: Mapping[str, int], changes: Mapping[str, int | None]
) -> dict[str, int]:
    """``current`` overrides with ``changes`` applied (None removes a class's override).

    Raises:
        InvalidInputError: an unknown data class, or days not a whole number in range.
    """
    validate_overrides({k: 1 if v is None else v for k, v in changes.items()})
    merged = {**current, **changes}
    return validate_overrides({k: v for k, v in merged.items() if v is not None})


def load_windows(conn: Connection) -> list[OrgWindows]:
    """Every org's windows, by name.

    The transaction must act as a role that reads every org (worker, staff or support).
    """
    tiers: dict[str, dict[str, int]] = {}
    for plan, data_class, days in conn.execute(select(retention_tiers)):
        tiers.setdefault(plan, {})[data_class] = days
    rows = conn.execute(
        select(orgs.c.id, orgs.c.name, orgs.c.plan, orgs.c.retention_overrides).order_by(
            orgs.c.name
        )
    ).all()
    return [
        OrgWindows(
            row.id,
            row.name,
            row.plan,
            row.retention_overrides,
            {**tiers.get(row.plan, {}), **row.retention_overrides},
        )
        for row in rows
    ]


@dataclass(slots=True)
class RetentionReport:
    """What a run pruned (or, in a dry run, would prune)."""

    now: datetime
    dry_run: bool
    engine: str
    windows: list[OrgWindows]
    relations: list[RelationReport] = field(default_factory=list)
    #: The directory of this run's Parquet files, if it exported.
    export_dir: Path | None = None

    @property
    def total_rows(self) -> int:
        """Rows deleted in batches (dry run: rows that would go) over all relations."""
        return sum(sum(r.rows.values()) for r in self.relations)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (org names instead of ids) for logs and the CLI."""
        names: dict[uuid.UUID | None, str] = {w.org_id: w.name for w in self.windows}
        names[None] = "*"
        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "engine": self.engine,
            "export_dir": str(self.export_dir) if self.export_dir else None,
            "total_rows": self.total_rows,
            "windows": {w.name: {"plan": w.plan, **w.days} for w in self.windows},
            "relations": {r.relation: _relation_dict(r, names) for r in self.relations},
        }


def _relation_dict(report: RelationReport, names: dict[uuid.UUID | None, str]) -> dict[str, Any]:
    if report.skipped is not None:
        return {"class": report.data_class, "skipped": report.skipped}
    return {
        "class": report.data_class,
        "kind": report.kind,
        "rows": {names.get(org, str(org)): n for org, n in report.rows.items()},
        "batches": report.batches,
        "dropped": [
            {
                "name": d.name,
                "from": d.range_start.isoformat(),
                "to": d.range_end.isoformat(),
                "rows": d.rows,
            }
            for d in report.dropped
        ],
        "busy": report.busy,
        "files": [p.name for p in report.files],
    }


def run_retention(
    engine: Engine,
    now: datetime,
    *,
    dry_run: bool = False,
    export_dir: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    org_id: uuid.UUID | None = None,
) -> RetentionReport:
    """Prunes every retention class of every org (or of ``org_id`` only) as of ``now``.

    Args:
        engine: an engine on the service login (each step acts as ``aeos_worker``).
        now: the clock of this run (timezone-aware).
        dry_run: count what would go, change nothing (and write no files).
        export_dir: write every pruned row to Parquet files in a new directory under it
            before it is deleted.
        batch_size: rows per delete batch (and per Parquet file of batched deletes).
        org_id: prune only this org's rows.

    Raises:
        InvalidInputError: ``now`` is naive or ``batch_size`` is not positive.
        NotFoundError: no org ``org_id``.
        RetentionBusyError: another run that changes data is in progress.
        RetentionExportError: a Parquet file could not be written (see its ``report``).
    """
    if now.tzinfo is None:
        raise InvalidInputError("the retention clock must be timezone-aware")
    if batch_size < 1:
        raise InvalidInputError("the batch size must be at least 1")
    with engine.begin() as conn:
        act_as(conn, Scope(DbRole.WORKER))
        windows = load_windows(conn)
        storage_engine = recorded_engine(conn)
        targets = find_targets(conn, storage_engine)
    if org_id is not None and org_id not in {w.org_id for w in windows}:
        raise NotFoundError(f"no org with id {org_id}")
    report = RetentionReport(now, dry_run, str(storage_engine), windows)
    with _one_run_at_a_time(engine, dry_run):
        if not dry_run:  # 1 min rows are deleted only once folded (storage.ingest.folds)
            fold_rollups(engine, now)
        try:
            export = None if dry_run or export_dir is None else ParquetExport(export_dir, now)
            report.export_dir = export.directory if export else None
            for target in targets:
                plan = plan_target(target, windows, now, org_id)
                report.relations.append(_prune_one(engine, plan, dry_run, export, batch_size))
        except ExportError as exc:
            raise RetentionExportError(str(exc), report) from exc
    return report


def _prune_one(
    engine: Engine,
    plan: PrunePlan,
    dry_run: bool,
    export: ParquetExport | None,
    batch_size: int,
) -> RelationReport:
    """Prunes one relation; a database error says which relation it was on."""
    step = "counting the expired rows of" if dry_run else "pruning"
    try:
        return prune(engine, plan, dry_run=dry_run, export=export, batch_size=batch_size)
    except DBAPIError as exc:
        raise JobStepError("retention", step, plan.target.relation, exc) from exc


@contextmanager
def _one_run_at_a_time(engine: Engine, dry_run: bool) -> Iterator[None]:
    """Holds a session advisory lock for a run that changes data (several service
    processes may schedule retention; two runs would only wait on each other's rows)."""
    if dry_run:
        yield
        return
    with engine.connect() as guard:
        key = {"k": RETENTION_LOCK_KEY}
        locked = guard.execute(text(q.TRY_RUN_LOCK), key).scalar_one()
        guard.commit()
        if not locked:
            raise RetentionBusyError("another retention run is in progress on this database")
        try:
            yield
        finally:
            guard.execute(text(q.RUN_UNLOCK), key)
            guard.commit()


def plan_target(
    target: Target, windows: list[OrgWindows], now: datetime, org_id: uuid.UUID | None = None
) -> PrunePlan:
    """The cutoffs of one relation: per group of orgs, and for whole partitions/chunks."""
    cutoffs: dict[uuid.UUID, datetime | None] = {
        w.org_id: _cutoff(now, w.days.get(target.data_class), target.width) for w in windows
    }
    known = [c for c in cutoffs.values() if c is not None]
    # The earliest cutoff is the longest window; an org keeping a class forever, or no
    # org at all, means no whole partition or chunk may go.
    earliest = min(known) if known and len(known) == len(cutoffs) else None
    groups: dict[datetime, tuple[uuid.UUID, ...]] = {}
    if not target.per_org:
        if earliest is not None and org_id is None:
            groups[earliest] = ()
    else:
        for org, cutoff in cutoffs.items():
            if cutoff is not None and org_id in (None, org):
                groups[cutoff] = (*groups.get(cutoff, ()), org)
    whole = earliest if org_id is None and target.has_children else None
    return PrunePlan(target, groups, whole)


def _cutoff(now: datetime, days: int | None, width: timedelta) -> datetime | None:
    """Rows whose time is before the cutoff go.

    A raw row goes when its time is before the window's start; a bucket of ``width``
    when it ends by then: its start is at most ``start - width``, i.e. before
    ``start - width`` plus the resolution of PostgreSQL timestamps.
    """
    if days is None:
        return None
    start = now - timedelta(days=days)
    return start - width + _RESOLUTION if width else start

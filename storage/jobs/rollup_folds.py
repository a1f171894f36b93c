"""The ``rollup-folds`` job: folds ended hours and days into the coarser rollup levels.

PostgreSQL engine only (``storage.ingest.folds`` says why and how it stays exact); on
TimescaleDB the continuous aggregates' own policies do this. Each fold is one short
transaction acting as ``aeos_worker``; a fold that finds nothing to do changes nothing.
Readers see the same rows before and after a fold, so the job may lag or fail without
changing any answer: it bounds how much the views regroup when read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from storage.errors import InvalidInputError
from storage.ingest.folds import FOLDS, Fold, fold_statements, target
from storage.migrate import StorageEngine, recorded_engine
from storage.tenancy import DbRole, Scope, act_as

_MARKS = "SELECT relation, folded_until FROM rollup_folds"
_STATEMENTS = {fold.relation: [text(s) for s in fold_statements(fold)] for fold in FOLDS}


def fold_rollups(engine: Engine, now: datetime) -> Mapping[str, Any]:
    """Folds every folded level up to its last ended bucket at ``now``.

    Returns:
        ``{"folded": {relation: buckets folded}}`` (only relations that moved), or
        ``{"skipped": why}`` on an engine without folded levels.
    """
    if now.tzinfo is None:
        raise InvalidInputError("the fold clock must be timezone-aware")
    with engine.begin() as conn:
        act_as(conn, Scope(DbRole.WORKER))
        if recorded_engine(conn) is StorageEngine.TIMESCALE:
            return {"skipped": "TimescaleDB: continuous aggregates refresh themselves"}
        marks = _marks(conn)
    folded: dict[str, int] = {}
    for fold in FOLDS:
        hi = target(fold, now, marks)
        lo = marks[fold.relation]
        if hi <= lo:
            continue
        with engine.begin() as conn:
            act_as(conn, Scope(DbRole.WORKER))
            rows = _fold(conn, fold, hi)
        if rows is not None:
            marks[fold.relation] = hi
            folded[fold.relation] = rows
    return {"folded": folded}


def _marks(conn: Connection) -> dict[str, datetime]:
    return {r.relation: r.folded_until for r in conn.execute(text(_MARKS))}


def _fold(conn: Connection, fold: Fold, hi: datetime) -> int | None:
    """One fold up to ``hi`` under the family's lock; the rows written (None: another run
    already folded that far)."""
    lock, delete, insert, advance = _STATEMENTS[fold.relation]
    conn.execute(lock)
    lo = _marks(conn)[fold.relation]  # read again under the lock: the last word
    if hi <= lo:
        return None
    params = {"lo": lo, "hi": hi, "relation": fold.relation}
    conn.execute(delete, params)
    written = conn.execute(insert, params).rowcount
    conn.execute(advance, params)
    return written

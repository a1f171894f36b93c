"""Folded coarse levels (PostgreSQL engine): 1 h and 1 day rollups kept by a job, read live.

Every group commit used to merge its 1 min rows into the 1 min, 1 h and 1 day rows of every
family: three histogram merges per key, and the 1 h and 1 day rows are the ones every
writer touches. Now the writer merges into 1 min only, and a job
(:func:`storage.jobs.rollup_folds.fold_rollups`) folds whole hours and days that have
ended into the coarser levels' store tables (``<relation>_store``). ``rollup_folds``
holds, per folded relation, ``folded_until``: the store holds exactly the buckets before
it. The relation readers use (``span_red_1h``, ...) is a view: the store's rows before
``folded_until``, and from ``folded_until`` on the level below regrouped (``1h`` from
``1m``, ``1d`` from the ``1h`` view), as TimescaleDB's real-time aggregation does.
Readers see the same rows whether the job ran or not; it only bounds how much the view
regroups when read.

- **Late rows.** A 1 min row whose bucket is before a level's ``folded_until`` is also
  merged into that level's store by the writer, in the same statement (so a late span costs
  what every span cost before).
- **No row lost between the two.** A fold takes ``SHARE`` on the family's 1 min table: it
  waits for the writers of that family to commit and keeps new ones out until it commits,
  so no write reads a ``folded_until`` older than the rows the fold read. A writer's
  statement locks every table it writes before taking its snapshot, so once the fold has
  committed it reads the new ``folded_until``.
- **Exact.** A fold deletes the store's rows of the range it folds, then writes them
  from the level below: rows a store may hold past ``folded_until`` (written before this
  scheme existed, for buckets then in the future) are replaced, never added to.
- **Retention** folds first (:func:`storage.retention.run.run_retention`), so it never
  deletes 1 min rows that are not folded yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.schema import (
    FAMILIES,
    LEVEL_INTERVALS,
    MAX_BIGINT,
    ROLLUP_LEVELS,
    ROLLUP_TABLES,
    Family,
    Measure,
)
from storage.schema._rollups import LEVEL_SECONDS

ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Fold:
    """One folded level of one family."""

    family: Family
    level: str

    @property
    def relation(self) -> str:
        """The view readers use."""
        return self.family.relation(self.level)

    @property
    def store(self) -> str:
        """The table holding the folded rows."""
        return self.family.rows_of(self.level)

    @property
    def below(self) -> str:
        """The level below's relation (the view, if folded): what the view regroups."""
        return self.family.relation(ROLLUP_LEVELS[ROLLUP_LEVELS.index(self.level) - 1])

    @property
    def below_rows(self) -> str:
        """The level below's rows as folded: its table (a store before its own watermark)."""
        return self.family.rows_of(ROLLUP_LEVELS[ROLLUP_LEVELS.index(self.level) - 1])

    @property
    def lock(self) -> str:
        """The table whose ``SHARE`` lock keeps the family's writers out during a fold."""
        return self.family.relation(self.family.levels[0])


#: Every folded level, each after the level it reads (1 h before 1 day).
FOLDS = tuple(
    Fold(f, level)
    for level in ROLLUP_LEVELS
    for f in FAMILIES
    if level in f.levels and f.folded(level)
)
FOLD_BY_RELATION = {fold.relation: fold for fold in FOLDS}


def merge_expr(m: Measure, prefix: str) -> str:
    """``m.merge_sql``, saturating for bigint sums (``sum(bigint)`` is numeric: no overflow)."""
    if m.merge == "sum" and m.sql_type == "bigint":
        return f"LEAST(sum({prefix}{m.name}), {MAX_BIGINT})::bigint"
    return m.merge_sql(prefix)


def watermark_sql(relation: str) -> str:
    """A scalar subquery: the relation's ``folded_until`` (the writer's late-row test)."""
    return f"(SELECT folded_until FROM rollup_folds WHERE relation = '{relation}')"


#: The watermark as the views read it (migration 0022). A subquery is an InitPlan the
#: planner cannot see into: it guessed a third of the 1 min table for the live branch and
#: chose parallel plans for reads returning a few rows. A stable function with a constant
#: argument is evaluated when the planner estimates, so each branch is planned with the
#: real mark. SECURITY DEFINER: a tenant reading ``tenant.*`` runs the function as itself
#: and holds no privilege on ``rollup_folds`` (the mark of a relation is no org's data).
MARK_FUNCTION = (
    "CREATE OR REPLACE FUNCTION aeos_folded_until(relation text) RETURNS timestamptz "
    "LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp "
    "AS $fn$ SELECT folded_until FROM rollup_folds WHERE rollup_folds.relation = $1 $fn$"
)


def mark_sql(relation: str) -> str:
    """The relation's ``folded_until`` as the views read it (:data:`MARK_FUNCTION`)."""
    return f"aeos_folded_until('{relation}')"


def grouped_select(target: Family, level: str, source: str, where: str = "") -> str:
    """``target``'s rows at ``level`` regrouped from finer rows of ``source`` (``... AS s``),
    in the columns' order (bucket, org, dimensions, measures)."""
    bucket = f"date_bin(INTERVAL '{LEVEL_INTERVALS[level]}', s.bucket, {ORIGIN})"
    sel, group = [f"{bucket} AS bucket"], [bucket]
    if target.per_org:
        sel.append("s.org_id")
        group.append("s.org_id")
    for dim, _ in target.dims:
        if dim in target.functional:  # one value per key: any will do, the least is stable
            sel.append(f"(array_agg(s.{dim} ORDER BY s.{dim}))[1] AS {dim}")
        else:
            sel.append(f"s.{dim}")
            group.append(f"s.{dim}")
    sel += [f"{merge_expr(m, 's.')} AS {m.name}" for m in target.measures]
    filtered = f" WHERE {where}" if where else ""
    return f"SELECT {', '.join(sel)} FROM {source}{filtered} GROUP BY {', '.join(group)}"


def view_sql(fold: Fold) -> str:
    """The view readers use: the store before the watermark, the level below regrouped after."""
    columns = ", ".join(c.name for c in ROLLUP_TABLES[fold.relation].columns)
    mark = mark_sql(fold.relation)
    live = grouped_select(fold.family, fold.level, f"{fold.below} AS s", f"s.bucket >= {mark}")
    return (
        f"CREATE VIEW {fold.relation} AS SELECT {columns} FROM {fold.store} "
        f"WHERE bucket < {mark} UNION ALL {live}"
    )


def fold_statements(fold: Fold) -> list[str]:
    """The statements of one fold of ``[:lo, :hi)`` (SQLAlchemy parameters), in order."""
    columns = ", ".join(c.name for c in ROLLUP_TABLES[fold.relation].columns)
    key = ", ".join(fold.family.key)
    assignments = ", ".join(f"{m.name} = EXCLUDED.{m.name}" for m in fold.family.measures)
    where = "s.bucket >= :lo AND s.bucket < :hi"
    rows = grouped_select(fold.family, fold.level, f"{fold.below_rows} AS s", where)
    return [
        f"LOCK TABLE {fold.lock} IN SHARE MODE",
        f"DELETE FROM {fold.store} WHERE bucket >= :lo AND bucket < :hi",
        f"INSERT INTO {fold.store} AS t ({columns}) {rows} ON CONFLICT ({key}) "
        f"DO UPDATE SET {assignments}",
        "UPDATE rollup_folds SET folded_until = :hi WHERE relation = :relation",
    ]


def floor_to(t: datetime, level: str) -> datetime:
    """The start of the ``level`` bucket holding ``t`` (buckets counted from 2000-01-01)."""
    width = LEVEL_SECONDS[level]
    return _EPOCH + timedelta(seconds=(t - _EPOCH).total_seconds() // width * width)


def target(fold: Fold, now: datetime, marks: dict[str, datetime]) -> datetime:
    """How far ``fold`` may fold at ``now``: whole buckets that have ended, and never past
    the level below's own watermark (its store rows are what a fold reads)."""
    hi = floor_to(now, fold.level)
    below = FOLD_BY_RELATION.get(fold.below)
    if below is not None:
        hi = min(hi, floor_to(marks[below.relation], fold.level))
    return hi


__all__ = [
    "FOLDS",
    "FOLD_BY_RELATION",
    "MARK_FUNCTION",
    "Fold",
    "floor_to",
    "fold_statements",
    "grouped_select",
    "mark_sql",
    "merge_expr",
    "target",
    "view_sql",
    "watermark_sql",
]

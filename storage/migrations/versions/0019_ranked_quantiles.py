"""Rollup percentiles from the row's own count: cheaper at every upsert (PostgreSQL engine).

Each PostgreSQL rollup row stores p50/p95/p99 as generated columns, and every group commit
updates the touched rows at 1 min, 1 h and 1 day. ``aeos_hist_quantile(hist, q)`` read
the whole histogram to count it and then again up to the rank. Profiled under
``bench/ingest.py``, the quantile calls were about a third of PostgreSQL's time per span,
three times the histogram merges. The row already holds that count (``span_count``,
``context_size_count``: every observation is counted there and binned in the histogram).
``aeos_hist_quantile_n(hist, count, q)`` ranks with it and reads only the buckets up to
the answer, from the nearer end, so p95 and p99 read a few buckets.

- Both engines: the ``aeos_*`` functions are replaced by the frozen ones beside this file
  (same results; ``aeos_hist_add`` adds a few buckets into a large histogram by binary
  search instead of a full merge; ``aeos_hist_quantile`` calls the new function). The
  continuous aggregates keep calling ``aeos_hist_quantile``.
- PostgreSQL engine: each p-column of the rollup tables is generated again from the new
  expression. PostgreSQL 15 cannot alter a generation expression, so the columns are
  dropped and added back (one rewrite of each table, under its lock; the columns stay
  last, in the same order). The views over those tables (``tenant.*``, ``*_levels``)
  are dropped first and created again as they were, with their grants and comments.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic import op
from sqlalchemy import Connection, text

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_DDL: dict[str, Any] = json.loads(Path(__file__).with_suffix(".json").read_text("utf-8"))
_RED = ("duration_hist", "span_count", (("duration_p50_ms", 0.5), ("duration_p95_ms", 0.95),
                                        ("duration_p99_ms", 0.99)))  # fmt: skip
#: family: (histogram column, its count column, (p-column, quantile) ...), as of 0019.
_QUANTILES = {
    "span_red": _RED,
    "org_red": _RED,
    "platform_red": _RED,
    "uce_ops": (
        "context_size_hist",
        "context_size_count",
        (("context_size_p50", 0.5), ("context_size_p95", 0.95)),
    ),
}
_TABLES = [f"{family}_{level}" for family in _QUANTILES for level in ("1m", "1h", "1d")]

#: Views over the tables, each with its depth (1: reads a table; n + 1: reads a view of
#: depth n): dropped deepest first, created shallowest first.
_DEPENDENT_VIEWS = """
WITH RECURSIVE dep(oid, depth) AS (
  SELECT DISTINCT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
   WHERE d.refobjid = ANY(CAST(:roots AS regclass[])) AND r.ev_class <> d.refobjid
  UNION
  SELECT r.ev_class, dep.depth + 1 FROM dep JOIN pg_depend d ON d.refobjid = dep.oid
    JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> d.refobjid
)
SELECT format('%I.%I', n.nspname, c.relname) AS name, pg_get_viewdef(c.oid) AS body,
       coalesce(array_to_string(c.reloptions, ', '), '') AS options,
       obj_description(c.oid, 'pg_class') AS comment,
       ARRAY(SELECT format('GRANT %s ON %I.%I TO %s', a.privilege_type, n.nspname,
                           c.relname, CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                           ELSE quote_ident(g.rolname) END)
               FROM aclexplode(c.relacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee
              WHERE a.grantee <> c.relowner) AS grants
  FROM (SELECT oid, max(depth) AS depth FROM dep GROUP BY oid) AS v
  JOIN pg_class c ON c.oid = v.oid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'v'
 ORDER BY v.depth, c.oid
"""


def _regenerate(table: str, hist: str, count: str, columns: tuple[tuple[str, float], ...]) -> None:
    drops = [f"DROP COLUMN {c}" for c, _ in columns]
    adds = [
        f"ADD COLUMN {c} double precision GENERATED ALWAYS AS "
        f"(aeos_hist_quantile_n({hist}, {count}, {q})) STORED"
        for c, q in columns
    ]
    op.execute(f"ALTER TABLE {table} {', '.join(drops + adds)}")


def _postgres(conn: Connection) -> None:
    views = conn.execute(text(_DEPENDENT_VIEWS), {"roots": _TABLES}).all()
    for v in reversed(views):
        op.execute(f"DROP VIEW {v.name}")
    for family, (hist, count, columns) in _QUANTILES.items():
        for level in ("1m", "1h", "1d"):
            _regenerate(f"{family}_{level}", hist, count, columns)
    for v in views:
        options = f" WITH ({v.options})" if v.options else ""
        op.execute(f"CREATE VIEW {v.name}{options} AS {v.body}")
        for grant in v.grants:
            op.execute(grant)
        if v.comment is not None:
            quoted = v.comment.replace("'", "''")
            op.execute(f"COMMENT ON VIEW {v.name} IS '{quoted}'")


def upgrade() -> None:
    op.execute(_DDL["functions"])
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine != "timescale":
        _postgres(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")

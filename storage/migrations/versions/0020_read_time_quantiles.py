"""Rollup percentiles computed when read, not at every upsert (PostgreSQL engine).

Every group commit updates the touched rollup rows at 1 min, 1 h and 1 day, and each
update of a RED or UCE row evaluated its generated p50/p95/p99 columns again: three
plpgsql calls per row. Measured on one 500-span request's rollup rows (about 70 rows with
a histogram per commit), that was a third of the rollup statements' time
(``bench/rollup_statements.py``: 4.0 -> 2.7 ms per commit without them), while a reader
wants a percentile of a few rows at most: a panel point or a series step that is one
rollup row ranks within it (``aeos_hist_quantile_n``, a few buckets read), and a point
over many rows merges their histograms anyway.

- PostgreSQL engine: the p-columns of the rollup tables are dropped. The views over the
  tables (``tenant.*``, ``*_levels``) are dropped first and created again as they were,
  with their grants and comments, each p-column now the same expression the generated
  column had (``aeos_hist_quantile_n(hist, count, q)``), so whoever reads the views (Grafana
  panels, tenants' SQL) sees the same columns and values. Staff reading a table directly
  compute it the same way.
- TimescaleDB engine: nothing changes (continuous aggregates compute their columns when a
  refresh writes them, not per ingest).

``0020_read_time_quantiles.json`` freezes the rollup declarations as of this revision.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import Connection, text

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

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
#: p-column: (histogram column, count column, quantile).
_EXPRESSIONS = {
    column: (hist, count, q)
    for hist, count, columns in _QUANTILES.values()
    for column, q in columns
}
#: A p-column as an item of a view's select list, as ``pg_get_viewdef`` prints it: alone on
#: its line, maybe qualified, maybe followed by a comma.
_ITEM = re.compile(
    r"^(?P<indent>\s+)(?P<qual>(?:\w+\.)?)(?P<column>"
    + "|".join(_EXPRESSIONS)
    + r")(?P<comma>,?)$",
    re.MULTILINE,
)

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


def _computed(match: re.Match[str]) -> str:
    hist, count, q = _EXPRESSIONS[match["column"]]
    qual = match["qual"]
    return (
        f"{match['indent']}aeos_hist_quantile_n({qual}{hist}, {qual}{count}, {q}) "
        f"AS {match['column']}{match['comma']}"
    )


def computed_body(name: str, body: str) -> str:
    """A view's body with each p-column item computed from the histogram it came from.

    Every mention of a p-column must be such an item: one anywhere else (a filter, an
    expression) would need a human, so the migration stops rather than guess."""
    out = _ITEM.sub(_computed, body)
    stray = re.findall(r"(?<!AS )\b(" + "|".join(_EXPRESSIONS) + r")\b", out)
    if stray:
        raise RuntimeError(f"view {name} uses {sorted(set(stray))} other than as a column")
    return out


def _postgres(conn: Connection) -> None:
    views = conn.execute(text(_DEPENDENT_VIEWS), {"roots": _TABLES}).all()
    for v in reversed(views):
        op.execute(f"DROP VIEW {v.name}")
    for family, (_, _, columns) in _QUANTILES.items():
        for level in ("1m", "1h", "1d"):
            drops = ", ".join(f"DROP COLUMN {c}" for c, _ in columns)
            op.execute(f"ALTER TABLE {family}_{level} {drops}")
    for v in views:
        options = f" WITH ({v.options})" if v.options else ""
        op.execute(f"CREATE VIEW {v.name}{options} AS {computed_body(v.name, v.body)}")
        for grant in v.grants:
            op.execute(grant)
        if v.comment is not None:
            quoted = v.comment.replace("'", "''")
            op.execute(f"COMMENT ON VIEW {v.name} IS '{quoted}'")


def upgrade() -> None:
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine != "timescale":
        _postgres(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")

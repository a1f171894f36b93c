"""Coarse rollup levels folded by a job and read live (PostgreSQL engine).

Every group commit merged its 1 min rows into the 1 min, 1 h and 1 day rows of every
family, each merge of a histogram a PL/pgSQL loop over up to ~200 buckets: profiled on
one 500-span request's rows (``bench/rollup_statements.py``), the 1 h and 1 day upserts
were three quarters of the rollup statements' time. Now the writer merges into 1 min
only (and into a coarser level only a late row, whose bucket is already folded), and a
job folds whole hours and days that have ended (``storage.ingest.folds``).

- PostgreSQL engine: each 1 h and 1 day table of an additive family (every family but
  ``damn_heartbeats``, whose coarser levels are recomputed, and ``cost_daily``, which has
  one level) is renamed ``<name>_store``, with its primary key; its grants, policies and
  rows go with it. ``rollup_folds`` records up to where each store is folded: the start
  of the current hour or day, so the current bucket, which the writer kept merging until
  now, is read live from the level below until the job folds it (the store's row for it
  is then replaced, not added to). A view takes each table's name and columns: the store
  before ``folded_until``, the level below regrouped from there on. The views over the
  tables (``tenant.*``, ``*_levels``) are dropped first and created again as they were,
  with their grants and comments, now reading the new views.
- TimescaleDB engine: nothing changes (continuous aggregates already work this way) but
  for ``rollup_folds``, which both engines have (empty here).

``0021_folded_rollups.json`` freezes the rollup declarations as of this revision.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 14:30:00
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic import op
from sqlalchemy import Connection, text

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_DDL: dict[str, Any] = json.loads(Path(__file__).with_suffix(".json").read_text("utf-8"))
_READERS = "aeos_staff, aeos_support, aeos_worker"
_FAMILIES = ("span_red", "org_red", "platform_red", "uce_ops", "mosaic_routes",
             "mosaic_handoffs", "metric_rollup")  # fmt: skip
#: (relation, its bucket width), 1 h before 1 day: a 1 day view reads the 1 h one.
_FOLDED = [(f"{f}_{lv}", width) for lv, width in (("1h", "1 hour"), ("1d", "1 day"))
           for f in _FAMILIES]  # fmt: skip

#: Views over the tables, each with its depth (1: reads a table; n + 1: reads a view of
#: depth n): dropped deepest first, created shallowest first (as in 0020).
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


def _view_statements() -> dict[str, list[str]]:
    """Per folded relation, its CREATE VIEW and COMMENT ON VIEW from the frozen DDL."""
    out: dict[str, list[str]] = {name: [] for name, _ in _FOLDED}
    for statement in _DDL["postgres"]:
        words = statement.split()
        if words[:2] == ["CREATE", "VIEW"] or words[:3] == ["COMMENT", "ON", "VIEW"]:
            out[words[2] if words[1] == "VIEW" else words[3]].append(statement)
    return out


def _marks_table() -> None:
    """``rollup_folds``, on both engines (empty on TimescaleDB: nothing is folded there)."""
    op.execute(_DDL["postgres"][0])
    op.execute(
        "COMMENT ON TABLE rollup_folds IS 'PostgreSQL engine: a folded rollup level''s store "
        "table holds exactly the buckets before folded_until; its view regroups the level "
        "below from there on.'"
    )
    op.execute("COMMENT ON INDEX pk_rollup_folds IS 'serves: one folded relation''s mark'")
    op.execute(f"GRANT SELECT ON rollup_folds TO aeos_ingest, {_READERS}")
    op.execute("GRANT UPDATE ON rollup_folds TO aeos_worker")


def _postgres(conn: Connection) -> None:
    views = conn.execute(text(_DEPENDENT_VIEWS), {"roots": [n for n, _ in _FOLDED]}).all()
    for v in reversed(views):
        op.execute(f"DROP VIEW {v.name}")
    creates = _view_statements()
    for name, width in _FOLDED:
        op.execute(f"ALTER TABLE {name} RENAME TO {name}_store")
        op.execute(f"GRANT INSERT, UPDATE ON {name}_store TO aeos_worker")  # the fold job
        op.execute(
            "INSERT INTO rollup_folds (relation, folded_until) VALUES "
            f"('{name}', date_bin(INTERVAL '{width}', now(), "
            "TIMESTAMPTZ '2000-01-01 00:00:00+00'))"
        )
        for statement in creates[name]:
            op.execute(statement)
        op.execute(f"GRANT SELECT ON {name} TO {_READERS}")
        op.execute(f"REVOKE ALL ON {name} FROM aeos_tenant")
    for v in views:
        options = f" WITH ({v.options})" if v.options else ""
        op.execute(f"CREATE VIEW {v.name}{options} AS {v.body}")
        for grant in v.grants:
            op.execute(grant)
        if v.comment is not None:
            quoted = v.comment.replace("'", "''")
            op.execute(f"COMMENT ON VIEW {v.name} IS '{quoted}'")


def upgrade() -> None:
    _marks_table()
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine != "timescale":
        _postgres(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")

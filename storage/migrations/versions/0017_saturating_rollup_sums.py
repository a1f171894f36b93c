"""Rollup sums saturate instead of overflowing: a refresh never fails on accepted input.

0006's continuous aggregates cast sums of summed inputs back to ``bigint``
(``sum(coalesce(count, 1))::bigint`` for metric observations, ``sum(tokens_in)::bigint``
in ``cost_daily``, and the 1 h / 1 day levels summing those columns). Input accepted
within every per-item bound (1,100 histogram points of one series in one minute, each
with count 2^53) made such a sum pass 2^63 - 1: the refresh raised "bigint out of range"
and its policy failed for that window forever, for every org. The declarations now sum
in ``numeric`` and cap at 2^63 - 1 before the cast (``storage.schema._rollups``), and
``aeos_array_add`` (histogram bucket counts, both engines) saturates too, so both engines
give the same values: the PostgreSQL engine's upserts already saturated.

- Both engines: the ``aeos_*`` functions of the declarations are replaced (same
  signatures; continuous aggregates and tables that use them are untouched).
- TimescaleDB engine: a continuous aggregate's query cannot be altered, so the affected
  ones (:data:`_RECREATED`) are created again from the frozen DDL beside this file. What
  they already hold is kept: rollup rows outlive the raw rows they came from (retention
  keeps 1 day rollups much longer than spans or points), so the materialized rows are
  copied into the new materialization hypertables, and the refresh state goes with them
  (watermark, pending invalidations, invalidation threshold), as TimescaleDB's own
  ``cagg_migrate`` does. Views reading them (``tenant.*``, ``*_levels``) and every grant
  and comment on the relations are recreated as they were.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 00:15:00
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

from alembic import op
from sqlalchemy import Connection, text

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The DDL as of this revision (``storage.ingest.rollups.declared_ddl()``, frozen).
_DDL: dict[str, Any] = json.loads(Path(__file__).with_suffix(".json").read_text("utf-8"))
#: Continuous aggregates whose query changed, each after the one it reads.
_RECREATED = ("metric_rollup_1m", "metric_rollup_1h", "metric_rollup_1d", "cost_daily")
_SUBJECT = re.compile(
    r"^(?:CREATE MATERIALIZED VIEW |ALTER MATERIALIZED VIEW |"
    r"SELECT add_continuous_aggregate_policy\('|CALL add_columnstore_policy\(')(\w+)\b"
)
_CAT = "_timescaledb_catalog"

_DEPENDENT_VIEWS = """
WITH RECURSIVE dep(oid) AS (
  SELECT DISTINCT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
   WHERE d.refobjid = ANY(CAST(:roots AS regclass[])) AND r.ev_class <> d.refobjid
  UNION
  SELECT r.ev_class FROM dep JOIN pg_depend d ON d.refobjid = dep.oid
    JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> d.refobjid
)
SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name, pg_get_viewdef(c.oid) AS body,
       coalesce(array_to_string(c.reloptions, ', '), '') AS options,
       obj_description(c.oid, 'pg_class') AS comment
  FROM dep JOIN pg_class c ON c.oid = dep.oid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT LIKE '\\_timescaledb%' AND c.relkind = 'v'
   AND c.oid <> ALL(CAST(:roots AS regclass[]))
 ORDER BY c.oid
"""
_ACL = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, a.privilege_type
  FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
  LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE c.oid = CAST(:rel AS regclass) AND a.grantee <> c.relowner
"""
_CAGG = f"""
SELECT a.mat_hypertable_id AS mat_id, a.raw_hypertable_id AS raw_id,
       format('%I.%I', h.schema_name, h.table_name) AS mat
  FROM {_CAT}.continuous_agg a JOIN {_CAT}.hypertable h ON h.id = a.mat_hypertable_id
 WHERE a.user_view_schema = 'public' AND a.user_view_name = :name
"""


class _Saved(NamedTuple):  # not a dataclass: Alembic loads this module outside sys.modules
    """What a continuous aggregate holds besides its query (kept across the recreation)."""

    name: str
    mat_id: int
    raw_id: int
    grants: list[Any]
    mat_grants: list[Any]
    comment: str | None


def _statements(name: str) -> list[str]:
    return [s for s in _DDL["timescale"] if (m := _SUBJECT.match(s)) and m.group(1) == name]


def _grants(conn: Connection, relation: str) -> list[Any]:
    return list(conn.execute(text(_ACL), {"rel": relation}).all())


def _restore_grants(relation: str, grants: list[Any]) -> None:
    for grantee, privilege in grants:
        op.execute(f"GRANT {privilege} ON {relation} TO {grantee}")


def _save(conn: Connection, name: str) -> _Saved:
    """Copies the aggregate's rows and refresh state into temporary tables."""
    cagg = conn.execute(text(_CAGG), {"name": name}).one()
    comment = conn.execute(
        text("SELECT obj_description(CAST(:n AS regclass), 'pg_class')"), {"n": name}
    ).scalar()
    op.execute(f"CREATE TEMP TABLE _keep_{name} ON COMMIT DROP AS SELECT * FROM {cagg.mat}")
    for i, (table, column) in enumerate(_STATE):  # numbered: names stay under 63 bytes
        op.execute(
            f"CREATE TEMP TABLE _keep_{name}_{i} ON COMMIT DROP AS SELECT * FROM "
            f"{_CAT}.{table} WHERE {column} = {cagg.mat_id}"
        )
    return _Saved(
        name, cagg.mat_id, cagg.raw_id, _grants(conn, name), _grants(conn, cagg.mat), comment
    )


#: Refresh state per materialization hypertable (table, id column): where real-time
#: aggregation starts, ranges still to refresh, and (when another aggregate reads this
#: one) the threshold and the invalidations logged for its readers.
_STATE = (
    ("continuous_aggs_watermark", "mat_hypertable_id"),
    ("continuous_aggs_materialization_invalidation_log", "materialization_id"),
    ("continuous_aggs_invalidation_threshold", "hypertable_id"),
    ("continuous_aggs_hypertable_invalidation_log", "hypertable_id"),
)


def _restore(conn: Connection, saved: _Saved) -> None:
    """Puts the saved rows and refresh state into the recreated aggregate."""
    cagg = conn.execute(text(_CAGG), {"name": saved.name}).one()
    op.execute(f"INSERT INTO {cagg.mat} SELECT * FROM _keep_{saved.name}")
    for i, (table, column) in enumerate(_STATE):
        keep = f"_keep_{saved.name}_{i}"
        op.execute(f"UPDATE {keep} SET {column} = {cagg.mat_id}")
        op.execute(f"DELETE FROM {_CAT}.{table} WHERE {column} IN ({saved.mat_id}, {cagg.mat_id})")
        op.execute(f"INSERT INTO {_CAT}.{table} SELECT * FROM {keep}")
    _restore_grants(saved.name, saved.grants)
    _restore_grants(cagg.mat, saved.mat_grants)
    _comment(saved.name, saved.comment)


def _comment(view: str, comment: str | None) -> None:
    if comment is not None:
        quoted = comment.replace("'", "''")
        op.execute(f"COMMENT ON VIEW {view} IS '{quoted}'")


def _raw_state(conn: Connection, raw_ids: set[int]) -> None:
    """Keeps the raw hypertables' invalidation state (dropping the last aggregate on a
    hypertable may clear it; late rows logged there must still reach the new ones)."""
    ids = ", ".join(str(i) for i in sorted(raw_ids))
    for table in ("continuous_aggs_invalidation_threshold",
                  "continuous_aggs_hypertable_invalidation_log"):  # fmt: skip
        op.execute(
            f"CREATE TEMP TABLE _keep_raw_{table} ON COMMIT DROP AS SELECT * FROM "
            f"{_CAT}.{table} WHERE hypertable_id IN ({ids})"
        )


def _restore_raw_state() -> None:
    op.execute(
        f"INSERT INTO {_CAT}.continuous_aggs_invalidation_threshold "
        "SELECT * FROM _keep_raw_continuous_aggs_invalidation_threshold "
        "ON CONFLICT (hypertable_id) DO UPDATE SET watermark = EXCLUDED.watermark"
    )
    op.execute(
        f"INSERT INTO {_CAT}.continuous_aggs_hypertable_invalidation_log "
        "SELECT * FROM _keep_raw_continuous_aggs_hypertable_invalidation_log "
        f"EXCEPT SELECT * FROM {_CAT}.continuous_aggs_hypertable_invalidation_log"
    )


def _timescale(conn: Connection) -> None:
    views = conn.execute(text(_DEPENDENT_VIEWS), {"roots": list(_RECREATED)}).all()
    view_grants = {v.name: _grants(conn, v.name) for v in views}
    saved = [_save(conn, name) for name in _RECREATED]
    recreated_mats = {s.mat_id for s in saved}
    _raw_state(conn, {s.raw_id for s in saved if s.raw_id not in recreated_mats})
    for name in reversed(_RECREATED):
        op.execute(f"DROP MATERIALIZED VIEW {name} CASCADE")
    for name in _RECREATED:  # all first: creating one may touch the state of what it reads
        for statement in _statements(name):
            op.execute(statement)
    for s in saved:
        _restore(conn, s)
    _restore_raw_state()
    for v in views:
        options = f" WITH ({v.options})" if v.options else ""
        op.execute(f"CREATE VIEW {v.name}{options} AS {v.body}")
        _restore_grants(v.name, view_grants[v.name])
        _comment(v.name, v.comment)


def upgrade() -> None:
    op.execute(_DDL["functions"])
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine == "timescale":
        _timescale(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")

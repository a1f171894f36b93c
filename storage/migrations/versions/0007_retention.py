"""Retention by plan tier: windows, valid overrides, and what the worker needs to prune.

- ``retention_tiers``: days of each data class per plan, seeded with the seed's table.
- ``orgs.retention_overrides`` may only name known data classes with whole days in
  1..36500 (``aeos_retention_overrides_valid``, a CHECK). The Python side checks first and
  says what is wrong; the CHECK is the backstop for SQL written by hand.
- Pruning runs as ``aeos_worker``. Dropping a partition or a chunk needs the table's owner,
  so the worker gets SECURITY DEFINER functions that drop only a child whose whole time
  range ends by a given instant, and one that takes a SHARE lock on a child (no writes
  while its rows are exported; reads go on).
- The worker may read and delete every relation a retention class covers. Some are
  created by 0006 and may be continuous aggregates: a grant on one reaches its
  materialization hypertable, which is where their rows are deleted.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen as of this revision: data class -> days for (free, pro, enterprise).
_TIERS = {
    "events": (7, 14, 30),
    "spans": (3, 7, 14),
    "rollup_1m": (7, 14, 30),
    "rollup_1h": (30, 90, 180),
    "rollup_1d": (90, 365, 730),
    "cost_line_items": (90, 365, 730),
}
_PLANS = ("free", "pro", "enterprise")
_MAX_DAYS = 36_500
_ROLLUP_FAMILIES = (
    "span_red",
    "org_red",
    "platform_red",
    "metric_rollup",
    "uce_ops",
    "mosaic_routes",
    "mosaic_handoffs",
    "damn_heartbeats",
)
_RELATIONS = (
    "events",
    "metric_points",
    "spans",
    "traces",
    "cost_line_items",
    "alert_evaluations",
    "cost_daily",
    *(f"{family}_{level}" for family in _ROLLUP_FAMILIES for level in ("1m", "1h", "1d")),
)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_OVERRIDES_VALID = rf"""
CREATE OR REPLACE FUNCTION aeos_retention_overrides_valid(p jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT jsonb_typeof(p) = 'object' AND NOT EXISTS (
    SELECT 1 FROM jsonb_each(p) AS e(k, v)
     WHERE CASE
       WHEN e.k NOT IN ({_quoted(tuple(_TIERS))}) OR jsonb_typeof(e.v) <> 'number' THEN true
       ELSE e.v::numeric <> trunc(e.v::numeric) OR e.v::numeric NOT BETWEEN 1 AND {_MAX_DAYS}
     END)
$fn$;
"""

_LOCK = r"""
CREATE OR REPLACE FUNCTION aeos_retention_lock(p_child regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = p_child) THEN
    RAISE EXCEPTION 'aeos: % is not a partition or a chunk', p_child USING ERRCODE = '22023';
  END IF;
  EXECUTE format('LOCK TABLE %s IN SHARE MODE', p_child);
END
$fn$;
REVOKE ALL ON FUNCTION aeos_retention_lock(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aeos_retention_lock(regclass) TO aeos_worker;
"""

# PostgreSQL engine: range partitions and their bounds (DEFAULT and MINVALUE/MAXVALUE
# bounds are not listed: they are never dropped). The bound text is printed and parsed
# back in the same session, so TimeZone and DateStyle cancel out.
_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION aeos_partition_bounds(p_table regclass)
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT c.relname::text, b[1]::timestamptz, b[2]::timestamptz
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                    '^FOR VALUES FROM \(''([^'']*)''\) TO \(''([^'']*)''\)$') AS b
   WHERE i.inhparent = p_table AND b IS NOT NULL
   ORDER BY 2
$fn$;

CREATE OR REPLACE FUNCTION aeos_drop_partition(p_table text, p_partition text, p_before timestamptz)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
  v_end timestamptz;
BEGIN
  SELECT b.range_end INTO v_end
    FROM aeos_partition_bounds(format('public.%I', p_table)::regclass) b
   WHERE b.partition_name = p_partition;
  IF v_end IS NULL THEN
    RAISE EXCEPTION 'aeos: % is not a range partition of %', p_partition, p_table
      USING ERRCODE = '22023';
  END IF;
  IF v_end > p_before THEN
    RAISE EXCEPTION 'aeos: partition % ends at %, after %', p_partition, v_end, p_before
      USING ERRCODE = '22023';
  END IF;
  EXECUTE format('DROP TABLE public.%I', p_partition);
END
$fn$;
REVOKE ALL ON FUNCTION aeos_drop_partition(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aeos_drop_partition(text, text, timestamptz) TO aeos_worker;
GRANT EXECUTE ON FUNCTION aeos_partition_bounds(regclass) TO aeos_worker, aeos_staff, aeos_support;
"""

# TimescaleDB engine: drop_chunks on a hypertable or a continuous aggregate in public,
# with the bounds cast to the type of its time dimension (drop_chunks insists).
_CHUNKS = r"""
CREATE OR REPLACE FUNCTION aeos_drop_chunks(
  p_relation text, p_newer_than timestamptz, p_older_than timestamptz
) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
  v_rel regclass := to_regclass(format('public.%I', p_relation));
  v_rows regclass;
  v_type regtype;
  v_older text;
  v_newer text;
BEGIN
  SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
    INTO v_rows
    FROM timescaledb_information.continuous_aggregates
   WHERE view_schema = 'public' AND view_name = p_relation;
  SELECT d.column_type INTO v_type
    FROM timescaledb_information.dimensions d
   WHERE format('%I.%I', d.hypertable_schema, d.hypertable_name)::regclass = coalesce(v_rows, v_rel)
     AND d.dimension_number = 1;
  IF v_rel IS NULL OR v_type IS NULL THEN
    RAISE EXCEPTION 'aeos: % is not a hypertable or continuous aggregate', p_relation
      USING ERRCODE = '22023';
  END IF;
  IF p_older_than IS NULL THEN
    RAISE EXCEPTION 'aeos: drop_chunks needs an upper bound' USING ERRCODE = '22023';
  END IF;
  IF v_type = 'timestamptz'::regtype THEN
    v_older := quote_nullable(p_older_than) || '::timestamptz';
    v_newer := quote_nullable(p_newer_than) || '::timestamptz';
  ELSIF v_type = 'date'::regtype THEN
    v_older := quote_nullable((p_older_than AT TIME ZONE 'UTC')::date) || '::date';
    v_newer := quote_nullable((p_newer_than AT TIME ZONE 'UTC')::date) || '::date';
  ELSE
    RAISE EXCEPTION 'aeos: % has a time dimension of type %', p_relation, v_type
      USING ERRCODE = '22023';
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT drop_chunks(%L::regclass, older_than => %s, newer_than => %s)::text',
    v_rel, v_older, v_newer);
END
$fn$;
REVOKE ALL ON FUNCTION aeos_drop_chunks(text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aeos_drop_chunks(text, timestamptz, timestamptz) TO aeos_worker;
"""

_WORKER_GRANTS = rf"""
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY[{_quoted(_RELATIONS)}] LOOP
    IF to_regclass(format('public.%I', r)) IS NOT NULL THEN
      EXECUTE format('GRANT SELECT, DELETE ON public.%I TO aeos_worker', r);
    END IF;
  END LOOP;
END
$$;
"""


def upgrade() -> None:
    tiers = op.create_table(
        "retention_tiers",
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("data_class", sa.Text(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.CheckConstraint(f"plan IN ({_quoted(_PLANS)})", name=op.f("ck_retention_tiers_plan")),
        sa.CheckConstraint(f"days BETWEEN 1 AND {_MAX_DAYS}", name=op.f("ck_retention_tiers_days")),
        sa.CheckConstraint(
            f"data_class IN ({_quoted(tuple(_TIERS))})", name=op.f("ck_retention_tiers_data_class")
        ),
        sa.PrimaryKeyConstraint("plan", "data_class", name=op.f("pk_retention_tiers")),
        comment="Days of each data class an org keeps, per plan tier (orgs.retention_overrides wins).",
    )
    op.bulk_insert(
        tiers,
        [
            {"plan": plan, "data_class": data_class, "days": days}
            for data_class, per_plan in _TIERS.items()
            for plan, days in zip(_PLANS, per_plan, strict=True)
        ],
    )
    op.execute("COMMENT ON INDEX pk_retention_tiers IS 'serves: windows of a plan (retention)'")
    op.execute("GRANT SELECT ON retention_tiers TO aeos_worker, aeos_staff, aeos_support")
    op.execute(_OVERRIDES_VALID)
    op.execute(
        "ALTER TABLE orgs ADD CONSTRAINT ck_orgs_retention_overrides "
        "CHECK (aeos_retention_overrides_valid(retention_overrides))"
    )
    op.execute(_LOCK)
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    op.execute(_CHUNKS if engine == "timescale" else _PARTITIONS)
    op.execute(_WORKER_GRANTS)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")

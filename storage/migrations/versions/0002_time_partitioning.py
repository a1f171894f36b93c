"""Time partitioning of raw telemetry on either engine.

TimescaleDB engine: each raw table becomes a hypertable with the chunk interval below.
PostgreSQL engine: each raw table gets a DEFAULT partition (so that no accepted row is
ever refused for lack of a partition) and ``aeos_ensure_partitions(table, from, to)``,
which the service calls to create partitions ahead of time. A new partition takes over
any rows of its range that had landed in the DEFAULT partition.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 14:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# table -> (time column, chunk / partition interval), frozen as of this revision.
_RAW_TABLES = {
    "spans": ("start_time", "1 day"),
    "events": ("time", "1 day"),
    "metric_points": ("time", "1 day"),
    "cost_line_items": ("time", "7 days"),
    "alert_evaluations": ("time", "7 days"),
}

_ENSURE_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION aeos_ensure_partitions(p_table text, p_from timestamptz, p_to timestamptz)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
  v_interval interval;
  v_column text;
  v_lo timestamptz;
  v_hi timestamptz;
  v_name text;
  v_created integer := 0;
BEGIN
  SELECT value::interval INTO v_interval FROM aeos_meta WHERE key = 'partition_interval.' || p_table;
  SELECT value INTO v_column FROM aeos_meta WHERE key = 'partition_column.' || p_table;
  IF v_interval IS NULL OR v_column IS NULL THEN
    RAISE EXCEPTION 'aeos: table % is not time-partitioned', p_table USING ERRCODE = '22023';
  END IF;
  IF p_to < p_from OR p_to - p_from > interval '400 days' THEN
    RAISE EXCEPTION 'aeos: bad partition range % .. %', p_from, p_to USING ERRCODE = '22023';
  END IF;
  -- Serialises concurrent callers (several service processes) per table.
  PERFORM pg_advisory_xact_lock(hashtext('aeos_partitions.' || p_table));
  v_lo := date_bin(v_interval, p_from, TIMESTAMPTZ '2000-01-03 00:00:00+00');
  WHILE v_lo < p_to LOOP
    v_hi := v_lo + v_interval;
    v_name := format('%s_p%s', p_table, to_char(v_lo AT TIME ZONE 'UTC', 'YYYYMMDD'));
    IF to_regclass(v_name) IS NULL THEN
      EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                     v_name, p_table);
      -- Rows of this range that arrived before the partition existed move out of DEFAULT.
      EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                     'INSERT INTO %I SELECT * FROM moved',
                     p_table || '_default', v_column, v_column, v_name)
        USING v_lo, v_hi;
      EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                     p_table, v_name, v_lo, v_hi);
      v_created := v_created + 1;
    END IF;
    v_lo := v_hi;
  END LOOP;
  RETURN v_created;
END
$fn$;
REVOKE ALL ON FUNCTION aeos_ensure_partitions(text, timestamptz, timestamptz) FROM PUBLIC;
"""


def upgrade() -> None:
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine not in ("timescale", "postgres"):
        raise RuntimeError(f"unknown storage engine {engine!r}")
    op.execute(
        f"INSERT INTO aeos_meta (key, value) VALUES ('storage_engine', '{engine}') "
        "ON CONFLICT (key) DO NOTHING"
    )
    for table, (column, interval) in _RAW_TABLES.items():
        op.execute(
            "INSERT INTO aeos_meta (key, value) VALUES "
            f"('partition_interval.{table}', '{interval}'), ('partition_column.{table}', '{column}')"
        )
        if engine == "timescale":
            op.execute(
                f"SELECT create_hypertable('{table}', by_range('{column}', INTERVAL '{interval}'), "
                "create_default_indexes => false)"
            )
        else:
            op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    if engine == "postgres":
        op.execute(_ENSURE_PARTITIONS)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")

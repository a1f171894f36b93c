"""Every runtime SQL statement of retention, by name (SQLAlchemy ``:name`` binds).

Statements over one relation are built by the functions at the end: a relation's name and
time column are identifiers, which no bind parameter can carry; they come from the
schema declarations and the catalog (``storage.retention._targets``), never from input.
"""

from __future__ import annotations

# One run at a time per database (storage.retention.run): a session advisory lock.
TRY_RUN_LOCK = "SELECT pg_try_advisory_lock(:k)"
RUN_UNLOCK = "SELECT pg_advisory_unlock(:k)"

# Every transaction of a prune (storage.retention._prune).
SET_UTC = "SET LOCAL TimeZone = 'UTC'"
DROP_PARTITION = "SELECT aeos_drop_partition(:rel, :child, :before)"
DROP_CHUNKS = "SELECT count(*) FROM aeos_drop_chunks(:rel, :lo, :hi)"
# No writes into the child from here to the drop: the exported file holds what is dropped.
RETENTION_LOCK = "SELECT aeos_retention_lock(CAST(:child AS regclass))"


# Pruning inside the chunks of a hypertable, segment by segment (storage.retention._segments):
# the columnstore filters compressed batches only on constants, which a generic plan hides;
# a straddling batch is decompressed, and no cap may stop a step midway for good.
SEGMENT_SETTINGS = (
    "SET LOCAL plan_cache_mode = force_custom_plan",
    "SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0",
)
CHUNKS_BEFORE = """
SELECT format('%I.%I', chunk_schema, chunk_name) AS name, range_start, range_end
  FROM timescaledb_information.chunks
 WHERE hypertable_schema = :schema AND hypertable_name = :name AND range_start < :cutoff
 ORDER BY range_start
"""

COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a
 WHERE a.attrelid = to_regclass(:rel) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

# What retention finds in the catalog (storage.retention._targets).

DESCRIBE = """
SELECT c.relkind,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id'
                                              AND a.attnum > 0 AND NOT a.attisdropped) AS per_org,
       (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attname = :col AND a.attnum > 0 AND NOT a.attisdropped)
         AS time_type
  FROM pg_class c WHERE c.oid = to_regclass(:rel)
"""

CAGG = """
SELECT materialization_hypertable_schema AS schema, materialization_hypertable_name AS name
  FROM timescaledb_information.continuous_aggregates
 WHERE view_schema = 'public' AND view_name = :name
"""

HYPERTABLE = """
SELECT 1 FROM timescaledb_information.hypertables
 WHERE hypertable_schema = 'public' AND hypertable_name = :name
"""

PARTITIONS = """
SELECT partition_name AS name, range_start, range_end
  FROM aeos_partition_bounds(CAST(:rel AS regclass)) WHERE range_end <= :before
 ORDER BY range_start
"""

CHUNKS = """
SELECT format('%I.%I', chunk_schema, chunk_name) AS name, range_start, range_end
  FROM timescaledb_information.chunks
 WHERE hypertable_schema = :schema AND hypertable_name = :name AND range_end <= :before
 ORDER BY range_start
"""


def quote(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def set_lock_timeout(timeout: str) -> str:
    """``SET LOCAL lock_timeout`` to ``timeout`` (a constant of ``_prune``, such as ``2s``)."""
    return f"SET LOCAL lock_timeout = '{timeout}'"


def expired_where(time_column: str, *, per_org: bool, whole_traces: bool, dry_run: bool) -> str:
    """The condition on ``r`` (the relation) for rows before ``:cutoff`` (of ``:orgs``)."""
    parts = [f"r.{quote(time_column)} < :cutoff"]
    if per_org:
        parts.insert(0, "r.org_id = ANY(:orgs)")
    if whole_traces:
        # A trace summary goes once no span of its trace is left; in a dry run, once none
        # would be left (spans of the same org and class go at the same cutoff).
        newer = " AND s.start_time >= :cutoff" if dry_run else ""
        parts.append(
            "NOT EXISTS (SELECT 1 FROM public.spans AS s "
            f"WHERE s.org_id = r.org_id AND s.trace_id = r.trace_id{newer})"
        )
    return " AND ".join(parts)


def count_expired(rows_in: str, org: str, where: str) -> str:
    """Rows that would go, per org (``org`` is ``r.org_id`` or ``NULL::uuid``)."""
    return f"SELECT {org} AS org_id, count(*) AS n FROM {rows_in} AS r WHERE {where} GROUP BY 1"


def delete_batch(rows_in: str, where: str, returning: str) -> str:
    """Deletes at most ``:n`` rows matching ``where``, returning ``returning``."""
    return (
        f"DELETE FROM {rows_in} AS r WHERE {where} AND (r.tableoid, r.ctid) IN "
        f"(SELECT r.tableoid, r.ctid FROM {rows_in} AS r WHERE {where} LIMIT :n) "
        f"RETURNING {returning}"
    )


def select_range(rows_in: str, columns: str, time_column: str) -> str:
    """The ``columns`` of the rows in ``[:lo, :hi)`` of ``time_column`` (a child's range)."""
    column = f"r.{quote(time_column)}"
    return f"SELECT {columns} FROM {rows_in} AS r WHERE {column} >= :lo AND {column} < :hi"


def segment_where(time_column: str, *, per_org: bool, one_org: bool) -> str:
    """Rows of ``:org`` (or of ``:orgs``) in ``[:lo, :hi)``; all orgs if not ``per_org``."""
    column = f"r.{quote(time_column)}"
    range_ = f"{column} >= :lo AND {column} < :hi"
    if not per_org:
        return range_
    return f"r.org_id = {':org' if one_org else 'ANY(:orgs)'} AND {range_}"


def segment_orgs(rows_in: str, where: str) -> str:
    """The orgs with rows matching ``where`` (a chunk's range)."""
    return f"SELECT DISTINCT r.org_id FROM {rows_in} AS r WHERE {where}"


def count_where(rows_in: str, where: str) -> str:
    """How many rows match ``where``."""
    return f"SELECT count(*) FROM {rows_in} AS r WHERE {where}"


def select_where(rows_in: str, columns: str, where: str) -> str:
    """The ``columns`` of the rows matching ``where``."""
    return f"SELECT {columns} FROM {rows_in} AS r WHERE {where}"


def delete_where(rows_in: str, where: str) -> str:
    """Deletes the rows matching ``where`` (no ``RETURNING``: see ``_segments``)."""
    return f"DELETE FROM {rows_in} AS r WHERE {where}"

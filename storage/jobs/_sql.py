"""Every runtime SQL statement of the periodic jobs, by name.

The scheduler's bookkeeping (``scheduler_runs`` and the jobs' advisory locks), the
sampling sweep and partition maintenance. Parameters are SQLAlchemy ``:name`` binds.
"""

from __future__ import annotations

# The scheduler's bookkeeping (storage.jobs._runs).
TRY_LOCK = "SELECT pg_try_advisory_lock(:ns, :key)"
UNLOCK = "SELECT pg_advisory_unlock(:ns, :key)"
LAST_START = """
SELECT max(started_at) AS last, clock_timestamp() AS now FROM scheduler_runs WHERE job = :job
"""
# Called holding the job's lock: a run still marked running is nobody's any more.
CLOSE_ABANDONED = """
UPDATE scheduler_runs SET status = 'failed', finished_at = clock_timestamp(), error = :error,
       failure = :error
 WHERE job = :job AND status = 'running'
"""
START = """
INSERT INTO scheduler_runs (job, started_at, instance) VALUES (:job, clock_timestamp(), :instance)
RETURNING started_at
"""
FINISH = """
UPDATE scheduler_runs SET finished_at = clock_timestamp(), status = :status,
       summary = CAST(:summary AS jsonb), error = :error, failure = :failure
 WHERE job = :job AND started_at = :started_at
"""
FORGET_OLD = (
    "DELETE FROM scheduler_runs WHERE job = :job AND started_at < clock_timestamp() - :keep"
)
LATEST = """
SELECT DISTINCT ON (r.job) r.job, r.started_at, r.instance, r.finished_at, r.status, r.summary,
       r.error, r.failure, (SELECT max(o.finished_at) FROM scheduler_runs o
                  WHERE o.job = r.job AND o.status = 'ok') AS last_success_at
  FROM scheduler_runs r ORDER BY r.job, r.started_at DESC
"""

# The sampling sweep (storage.jobs.sampling).
# Unsampled traces not pruned yet whose last span ended before the cutoff, oldest first
# (ix_traces_unsampled_end). Rows an ingest transaction is merging are skipped, not waited
# for: the merge may turn them to kept, and the next sweep sees them again anyway.
SELECT_UNSAMPLED = """
SELECT org_id, trace_id, start_time, end_time FROM traces
 WHERE NOT sampled AND spans_pruned_at IS NULL AND end_time < :cutoff
 ORDER BY end_time LIMIT :limit
   FOR UPDATE SKIP LOCKED
"""

# One org per statement. The spans primary key (org_id, trace_id, ...) finds each trace's
# spans; every span of a trace starts within [trace start, trace end]; the org's overall
# range, given as parameters, lets the planner skip partitions (chunks) outside it. On
# TimescaleDB the org and the range, as constants, are also what lets the columnstore
# decompress only that org's batches in that range (it cannot filter batches on a join).
DELETE_SPANS = """
DELETE FROM spans AS s
 USING unnest(CAST(:trace_ids AS bytea[]), CAST(:starts AS timestamptz[]),
              CAST(:ends AS timestamptz[])) AS b(trace_id, lo, hi)
 WHERE s.org_id = :org AND s.trace_id = b.trace_id
   AND s.start_time >= b.lo AND s.start_time <= b.hi
   AND s.start_time >= :lo AND s.start_time <= :hi
"""
# Constants for the columnstore's batch filters, which a generic plan would hide; and no
# cap on the rows a delete decompresses (TimescaleDB's default, 100 000 per transaction,
# would stop the sweep on the same batch forever once its chunks are compressed).
SWEEP_SETTINGS = (
    "SET LOCAL plan_cache_mode = force_custom_plan",
    "SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0",
)

MARK_PRUNED = """
UPDATE traces AS t SET spans_pruned_at = :now
  FROM unnest(CAST(:org_ids AS uuid[]), CAST(:trace_ids AS bytea[])) AS b(org_id, trace_id)
 WHERE t.org_id = b.org_id AND t.trace_id = b.trace_id
"""

# Partition maintenance (storage.jobs.partitions): the PostgreSQL engine only.
ENSURE_PARTITIONS = "SELECT aeos_ensure_partitions(:t, :lo, :hi)"

# TimescaleDB's own jobs (storage.jobs.timescale_jobs); no rows on the PostgreSQL engine.
TIMESCALE_JOBS = """
SELECT job_id, proc_name, relation, scheduled, last_run_status, last_successful_finish,
       total_runs, total_failures, last_error, last_error_at
  FROM aeos_timescale_jobs()
"""

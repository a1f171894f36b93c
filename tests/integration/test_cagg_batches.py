"""Continuous aggregates refresh in one pass (migration 0018), so no late row is lost.

TimescaleDB 2.19-2.28 refresh a policy's window in batches and drop an invalidation whose
greatest time is exactly the start of the next batch (timescale/timescaledb#10221, fixed in
2.29): such a row stays out of the aggregate until some later refresh covers it.
``test_rollups.py`` hit it (a span on a whole minute, at the times of day that put a batch
boundary there). On 2.28.3 the scenario of the upstream fix keeps 2 of its 3 late buckets
with ``buckets_per_batch => 1`` (checked by hand) and all 3 in one pass: the first test
runs it in one pass, as this service's policies now do; the second checks that every
refresh policy of a migrated database does.
"""

from __future__ import annotations

import psycopg
import pytest

from storage.database import Database
from storage.migrate import StorageEngine
from tests._tsdb_jobs import jobs

REFRESH = "policy_refresh_continuous_aggregate"


@pytest.fixture(params=[pytest.param(StorageEngine.TIMESCALE, marks=pytest.mark.timescale)])
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    """Continuous aggregates exist only on TimescaleDB."""
    kind: StorageEngine = request.param
    return kind


_SCENARIO = """
CREATE TABLE boundary (time timestamptz NOT NULL, device int);
SELECT FROM create_hypertable('boundary', 'time');
INSERT INTO boundary SELECT t, 1 FROM generate_series(
  date_trunc('day', now()) - interval '9 days 12 hours',
  date_trunc('day', now()) - interval '2 days 12 hours', interval '1 day') AS t;
CREATE MATERIALIZED VIEW boundary_daily WITH (timescaledb.continuous) AS
  SELECT time_bucket('1 day', time) AS bucket, device, count(*) AS n
    FROM boundary GROUP BY 1, 2 WITH NO DATA;
"""
# Late rows below the watermark; the last one exactly on a bucket start.
_LATE = """
INSERT INTO boundary VALUES
  (date_trunc('day', now()) - interval '8 days 12 hours', 2),
  (date_trunc('day', now()) - interval '7 days 12 hours', 2),
  (date_trunc('day', now()) - interval '7 days', 2)
"""


def _conninfo(database: Database) -> str:
    return database.admin_url.set(drivername="postgresql").render_as_string(False)


def test_a_late_row_on_a_bucket_start_is_refreshed_in_one_pass(database: Database) -> None:
    with psycopg.connect(_conninfo(database), autocommit=True) as conn:
        conn.execute(_SCENARIO)
        row = conn.execute(
            "SELECT add_continuous_aggregate_policy('boundary_daily', start_offset => "
            "INTERVAL '30 days', end_offset => INTERVAL '1 day', schedule_interval => "
            "INTERVAL '1 hour', buckets_per_batch => 0)"
        ).fetchone()
        assert row is not None
        job = row[0]
        conn.execute("SELECT alter_job(%s, scheduled => false)", [job])
        conn.execute("CALL run_job(%s)", [job])
        conn.execute(_LATE)
        conn.execute("CALL run_job(%s)", [job])
        late = conn.execute("SELECT count(*) FROM boundary_daily WHERE device = 2").fetchone()
    assert late == (3,)


def test_every_refresh_policy_refreshes_in_one_pass(database: Database) -> None:
    with psycopg.connect(_conninfo(database), autocommit=True) as conn:
        policies = [j for j in jobs(conn) if j.proc_name == REFRESH]
        configs = {
            name: cfg.get("buckets_per_batch")
            for name, cfg in conn.execute(
                "SELECT hypertable_name, config FROM timescaledb_information.jobs "
                "WHERE proc_name = %s",
                [REFRESH],
            ).fetchall()
        }
    assert len(policies) >= 10
    assert set(configs.values()) == {0}, configs

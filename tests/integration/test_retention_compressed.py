"""Retention on TimescaleDB once the columnstore policy has compressed the chunks.

The reported failure: events over the last 20 days, the ``events`` columnstore policy
run (every chunk older than 2 days compressed), then ``aeos retention run`` exited 1 with
``transparent decompression only supports tableoid system column`` (a batch delete by
``ctid``), and so did ``aeos jobs run retention``.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from storage import admin
from storage.database import Database
from storage.migrate import StorageEngine
from tests.conftest import BackgroundJobs
from tests.integration.test_cli import _url, aeos

# Both TimescaleDB job states (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("background_jobs")

DAYS = 20
PER_DAY = 6


@pytest.fixture(params=[pytest.param(StorageEngine.TIMESCALE, marks=pytest.mark.timescale)])
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    """Compressed chunks exist only on TimescaleDB."""
    kind: StorageEngine = request.param
    return kind


def _conninfo(db: Database) -> str:
    return db.admin_url.set(drivername="postgresql").render_as_string(False)


def _seed(db: Database, now: datetime) -> dict[str, uuid.UUID]:
    """``small`` (free: events 7 days) and ``big`` (enterprise: 30), events every 4 hours
    of the last 20 days each, so every chunk holds both orgs and none can be dropped."""
    with db.admin_engine().begin() as conn:
        ids = {
            name: admin.create_org(conn, name, plan).org_id
            for name, plan in [("small", "free"), ("big", "enterprise")]
        }
        conn.execute(text("RESET ROLE"))
        for org_id in ids.values():
            for step in range(DAYS * PER_DAY):
                conn.execute(
                    text(
                        "INSERT INTO events (org_id, time, event_id, message, payload) "
                        "VALUES (:o, :t, :e, 'm', '{\"n\": 1}')"
                    ),
                    {"o": org_id, "t": now - step * timedelta(hours=4), "e": uuid.uuid4().bytes},
                )
    return ids


def _run_columnstore_policy(db: Database, hypertable: str) -> None:
    with psycopg.connect(_conninfo(db), autocommit=True) as conn:
        row = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_compression' AND hypertable_name = %s",
            [hypertable],
        ).fetchone()
        assert row is not None
        conn.execute("CALL run_job(%s)", [row[0]])


def _chunks(db: Database) -> dict[str, bool]:
    with db.admin_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT chunk_name, is_compressed, range_end FROM timescaledb_information.chunks "
                "WHERE hypertable_name = 'events'"
            )
        ).all()
    return {r.chunk_name: r.is_compressed for r in rows if r.range_end < datetime.now(UTC)}


def _events(db: Database) -> Counter[tuple[str, datetime]]:
    with db.admin_engine().connect() as conn:
        rows = conn.execute(
            text("SELECT o.name, e.time FROM events e JOIN orgs o ON o.id = e.org_id")
        )
        return Counter((r.name, r.time) for r in rows)


def _ok(*args: str, db: Database) -> Any:
    result = aeos(*args, url=_url(db))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_retention_run_prunes_compressed_chunks_and_exports_what_it_prunes(
    database: Database, background_jobs: BackgroundJobs, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    _seed(database, now)
    background_jobs.settle(database)
    _run_columnstore_policy(database, "events")
    compressed = _chunks(database)
    old = [name for name, done in compressed.items() if done]
    assert len(old) >= DAYS - 3, compressed  # every chunk older than 2 days
    before = _events(database)

    out = _ok("retention", "run", "--export-dir", str(tmp_path), db=database)

    after = _events(database)
    cutoff = {"small": 7, "big": 30}
    expected = Counter(
        {
            k: n
            for k, n in before.items()
            if k[1] >= datetime.fromisoformat(out["now"]) - timedelta(days=cutoff[k[0]])
        }
    )
    assert after == expected
    assert sum((before - after).values()) == out["relations"]["events"]["rows"]["small"] > 0
    assert "big" not in out["relations"]["events"]["rows"]
    exported: Counter[tuple[str, datetime]] = Counter()
    small_id = str(_org_id(database, "small"))
    for name in out["relations"]["events"]["files"]:
        for row in pq.read_table(Path(out["export_dir"]) / name).to_pylist():
            assert row["org_id"] == small_id
            exported[("small", row["time"])] += 1
    assert exported == before - after


def _org_id(db: Database, name: str) -> uuid.UUID:
    with db.admin_engine().begin() as conn:
        return admin.org_id_by_name(conn, name)


def test_jobs_run_retention_prunes_late_rows_in_compressed_chunks(
    database: Database, background_jobs: BackgroundJobs
) -> None:
    now = datetime.now(UTC)
    ids = _seed(database, now)
    background_jobs.settle(database)
    _run_columnstore_policy(database, "events")
    assert _ok("retention", "run", db=database)["relations"]["events"]["rows"]["small"] > 0
    # Late rows into the compressed chunks, inside and outside small's window.
    with database.admin_engine().begin() as conn:
        for days in (3, 10, 15):
            conn.execute(
                text("INSERT INTO events (org_id, time, event_id) VALUES (:o, :t, :e)"),
                {"o": ids["small"], "t": now - timedelta(days=days), "e": uuid.uuid4().bytes},
            )

    result = aeos("jobs", "run", "retention", url=_url(database))

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["relations"]["events"]["rows"] == {"small": 2}
    left = _events(database)
    assert not [t for (name, t) in left if name == "small" and t < now - timedelta(days=7)]

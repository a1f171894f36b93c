"""``aeos retention run`` and ``aeos orgs set-retention`` as a user runs them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.migrate import StorageEngine
from tests.integration.test_cli import _url, aeos


@pytest.fixture(params=[StorageEngine.POSTGRES])
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    """The CLI is engine-agnostic: one engine is enough here."""
    kind: StorageEngine = request.param
    return kind


def _ok(*args: str, db: Database) -> Any:
    result = aeos(*args, url=_url(db))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def two_orgs(database: Database) -> dict[str, uuid.UUID]:
    """``small`` (free) and ``big`` (enterprise), each with a span and an event 10 days old.

    The clock is the real one here: 10 days is past free's windows (spans 3, events 7)
    and inside enterprise's (spans 14, events 30).
    """
    with scoped_transaction(database.admin_engine(), Scope(DbRole.STAFF)) as conn:
        ids = {
            name: admin.create_org(conn, name, plan).org_id
            for name, plan in [("small", "free"), ("big", "enterprise")]
        }
        conn.execute(text("RESET ROLE"))
        at = datetime.now(UTC) - timedelta(days=10)
        for org_id in ids.values():
            conn.execute(
                text(
                    "INSERT INTO spans (org_id, trace_id, span_id, name, start_time, end_time, "
                    "duration_ms) VALUES (:o, :t, :s, 'op', :at, :at, 1)"
                ),
                {"o": org_id, "t": uuid.uuid4().bytes, "s": b"\x01" * 8, "at": at},
            )
            conn.execute(
                text("INSERT INTO events (org_id, time, event_id) VALUES (:o, :at, :e)"),
                {"o": org_id, "at": at, "e": uuid.uuid4().bytes},
            )
    return ids


def _left(db: Database) -> dict[str, set[str]]:
    with db.admin_engine().connect() as conn:
        return {
            table: {
                name
                for (name,) in conn.execute(
                    text(f"SELECT o.name FROM {table} t JOIN orgs o ON o.id = t.org_id")
                )
            }
            for table in ("spans", "events")
        }


def test_dry_run_then_run_with_export(
    database: Database, two_orgs: dict[str, uuid.UUID], tmp_path: Path
) -> None:
    dry = _ok("retention", "run", "--dry-run", db=database)
    assert dry["dry_run"] is True
    assert dry["relations"]["spans"]["rows"] == {"small": 1}
    assert dry["relations"]["events"]["rows"] == {"small": 1}
    assert dry["windows"]["big"]["spans"] == 14
    assert _left(database) == {"spans": {"small", "big"}, "events": {"small", "big"}}

    done = _ok("retention", "run", "--export-dir", str(tmp_path), "--batch-size", "10", db=database)

    assert done["dry_run"] is False
    assert done["total_rows"] == 2
    assert _left(database) == {"spans": {"big"}, "events": {"big"}}
    run_dir = Path(done["export_dir"])
    assert run_dir.parent == tmp_path
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "events.00001.parquet",
        "spans.00001.parquet",
    ]
    spans = pq.read_table(run_dir / "spans.00001.parquet").to_pylist()
    assert [row["org_id"] for row in spans] == [str(two_orgs["small"])]


def test_override_then_run_for_one_org(database: Database, two_orgs: dict[str, uuid.UUID]) -> None:
    shown = _ok("orgs", "set-retention", "small", "spans=30", "events=9", db=database)
    assert shown["overrides"] == {"spans": 30, "events": 9}
    assert shown["days"]["spans"] == 30
    assert shown["days"]["rollup_1h"] == 30  # the free tier's, untouched
    again = _ok("orgs", "set-retention", "small", "spans=default", db=database)
    assert again["overrides"] == {"events": 9}

    done = _ok("retention", "run", "--org", "small", db=database)

    assert done["relations"]["spans"]["rows"] == {"small": 1}
    assert done["relations"]["events"]["rows"] == {"small": 1}  # 10 days > 9
    assert _left(database) == {"spans": {"big"}, "events": {"big"}}
    assert _ok("orgs", "set-retention", "small", db=database)["overrides"] == {"events": 9}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["retention", "run", "--org", "nope"], 1, "no org named 'nope'"),
        (["retention", "run", "--batch-size", "0"], 2, "--batch-size"),
        (["retention", "run", "--dry-run", "--export-dir", "x"], 1, "a dry run prunes nothing"),
        (["orgs", "set-retention", "small", "spans=0"], 1, "spans: 0 days is outside 1..36500"),
        (["orgs", "set-retention", "small", "spans=1.5"], 2, "not a whole number of days"),
        (["orgs", "set-retention", "small", "bogus=default"], 1, "unknown data class 'bogus'"),
        (["orgs", "set-retention", "small", "spans"], 2, "is not CLASS=DAYS"),
        (["orgs", "set-retention", "nope", "spans=3"], 1, "no org named 'nope'"),
    ],
)
def test_bad_input_fails_clearly_and_changes_nothing(
    database: Database, two_orgs: dict[str, uuid.UUID], args: list[str], code: int, message: str
) -> None:
    result = aeos(*args, url=_url(database))
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _left(database) == {"spans": {"small", "big"}, "events": {"small", "big"}}
    with database.admin_engine().connect() as conn:
        overrides = conn.execute(text("SELECT retention_overrides FROM orgs")).scalars().all()
    assert overrides == [{}, {}]


def test_an_export_directory_that_cannot_be_made_prunes_nothing(
    database: Database, two_orgs: dict[str, uuid.UUID], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = aeos("retention", "run", "--export-dir", str(blocker / "sub"), url=_url(database))
    assert result.returncode == 1
    assert "cannot create the export directory" in result.stderr
    assert "Traceback" not in result.stderr
    assert _left(database) == {"spans": {"small", "big"}, "events": {"small", "big"}}


@pytest.mark.parametrize(
    "command", [["retention"], ["retention", "run"], ["orgs", "set-retention"]]
)
def test_retention_commands_have_help(command: list[str]) -> None:
    result = aeos(*command, "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout

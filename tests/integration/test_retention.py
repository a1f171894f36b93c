"""Retention by plan tier against a real database, on each engine, with a controlled clock."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from storage import admin, scoped_transaction
from storage.database import Database
from storage.errors import InvalidInputError, NotFoundError
from storage.jobs.partitions import ensure_partitions
from storage.migrate import StorageEngine
from storage.retention import _export as _retention_export
from storage.retention import run as retention
from storage.retention.run import RetentionExportError, RetentionReport
from storage.schema import RETENTION_CLASSES, ROLLUP_TABLES
from storage.tenancy import DbRole, Scope, act_as
from tests.conftest import settle as jobs_may_have_run

# Both TimescaleDB job states (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("background_jobs")

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
DAY = timedelta(days=1)
WIDTHS = {"_1m": timedelta(minutes=1), "_1h": timedelta(hours=1), "_1d": DAY}

# One insert per relation that exists today: org :o, time :t, fresh ids :a (16 bytes),
# :b (8 bytes), :u (uuid); other columns take their defaults.
INSERTS = {
    "spans": "INSERT INTO spans (org_id, trace_id, span_id, name, start_time, end_time, "
    "duration_ms, attributes) VALUES (:o, :a, :b, 'op', :t, :t, 1.5, '{\"k\": [1, \"x\"]}')",
    "events": "INSERT INTO events (org_id, time, event_id, message, payload) "
    "VALUES (:o, :t, :a, 'hello', '{\"n\": 1}')",
    "metric_points": "INSERT INTO metric_points (org_id, metric, series_id, time, kind, value, "
    "explicit_bounds, bucket_counts) VALUES (:o, 'm', :a, :t, 'histogram', 2.5, '{1.0, 5.0}', "
    "'{1, 2, 3}')",
    "cost_line_items": "INSERT INTO cost_line_items (org_id, time, trace_id, span_id, cost_usd, "
    "cost_source) VALUES (:o, :t, :a, :b, 0.0012345678, 'explicit')",
    "alert_evaluations": "INSERT INTO alert_evaluations (org_id, rule_id, time, state) "
    "VALUES (:o, :u, :t, 'ok')",
    "span_red_1m": "INSERT INTO span_red_1m (bucket, org_id, operation) VALUES (:t, :o, :s)",
    "span_red_1h": "INSERT INTO span_red_1h (bucket, org_id, operation) VALUES (:t, :o, :s)",
    "span_red_1d": "INSERT INTO span_red_1d (bucket, org_id, operation) VALUES (:t, :o, :s)",
    "metric_rollup_1h": "INSERT INTO metric_rollup_1h (bucket, org_id, metric, series_id) "
    "VALUES (:t, :o, 'm', :a)",
    "cost_daily": "INSERT INTO cost_daily (bucket, org_id, model, cost_usd) "
    "VALUES (:t, :o, :s, 1.25)",
}
TIME_COLUMNS = {r: c for rels in RETENTION_CLASSES.values() for r, c in rels.items()}
CLASS_OF = {r: k for k, rels in RETENTION_CLASSES.items() for r in rels}


@dataclass(frozen=True)
class Org:
    org_id: uuid.UUID
    name: str
    days: dict[str, int]


@pytest.fixture
def orgs(database: Database) -> dict[str, Org]:
    """One org per plan, and a free org whose overrides lengthen spans and shorten events."""
    with scoped_transaction(database.admin_engine(), Scope(DbRole.STAFF)) as conn:
        for name, plan in [("free", "free"), ("pro", "pro"), ("ent", "enterprise")]:
            admin.create_org(conn, name, plan)
        admin.create_org(conn, "custom", "free")
        admin.set_retention(conn, "custom", {"spans": 30, "events": 2})
        conn.execute(text("RESET ROLE"))
        return {w.name: Org(w.org_id, w.name, dict(w.days)) for w in _windows(conn)}


def _windows(conn: Connection) -> list[retention.OrgWindows]:
    conn.execute(text("SET LOCAL ROLE aeos_staff"))
    windows = retention.load_windows(conn)
    conn.execute(text("RESET ROLE"))
    return windows


@pytest.fixture
def app(database: Database) -> Iterator[Engine]:
    engine = database.app_engine(pool_size=2)
    yield engine
    engine.dispose()


def run_retention(
    engine: Engine, now: datetime, *, settle: bool = True, **options: Any
) -> RetentionReport:
    """A retention run, at the moment TimescaleDB's jobs may have run since the seeding:
    in the ``jobs-ran`` state every job runs to completion first (all seeded chunks older
    than 2 days are then compressed), in ``jobs-idle`` none has run."""
    if settle:
        jobs_may_have_run(engine)
    return retention.run_retention(engine, now, **options)


def physical(conn: Connection, relation: str) -> str:
    """Where a relation's rows are: a continuous aggregate's materialization hypertable,
    or on PostgreSQL a folded level's store.

    Tests seed rollups directly; that means the materialization or the store (the
    relation itself is a view, and shows the level below past its watermark instead).
    """
    if relation not in ROLLUP_TABLES:
        return relation
    row = (
        conn.execute(
            text(
                "SELECT format('%I.%I', materialization_hypertable_schema, "
                "materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates "
                "WHERE view_name = :v"
            ),
            {"v": relation},
        ).first()
        if _has_timescale(conn)
        else None
    )
    if row:
        return str(row[0])
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:n)"), {"n": relation}
    ).scalar()
    # On PostgreSQL a folded level is a view over its store (storage/ingest/folds.py).
    return f"{relation}_store" if kind == "v" else relation


def _has_timescale(conn: Connection) -> bool:
    return bool(
        conn.execute(
            text("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
        ).scalar()
    )


def insert(conn: Connection, relation: str, org: uuid.UUID, at: datetime) -> None:
    ids = uuid.uuid4().bytes
    conn.execute(
        text(INSERTS[relation].replace(f"INTO {relation} ", f"INTO {physical(conn, relation)} ")),
        {"o": org, "t": at, "a": ids, "b": ids[:8], "u": uuid.uuid4(), "s": ids.hex()},
    )


def width(relation: str) -> timedelta:
    if relation == "cost_daily":
        return DAY
    return next((w for s, w in WIDTHS.items() if relation.endswith(s)), timedelta(0))


def boundary_rows(relation: str, days: int) -> tuple[datetime, datetime]:
    """The last row that goes and the first that stays, for a window of ``days``."""
    start = NOW - timedelta(days=days)
    w = width(relation)
    if not w:
        return start - US, start
    first_kept = datetime.fromtimestamp(
        start.timestamp() // w.total_seconds() * w.total_seconds(), UTC
    )
    return first_kept - w, first_kept


def times(conn: Connection, relation: str) -> set[tuple[uuid.UUID, Any]]:
    column = TIME_COLUMNS[relation]
    return {
        tuple(r)
        for r in conn.execute(text(f"SELECT org_id, {column} FROM {physical(conn, relation)}"))
    }


def as_key(relation: str, at: datetime) -> Any:
    return at


def snapshot(db: Database) -> dict[str, Counter[Any]]:
    """Every row of every relation retention covers (as text: row for row comparable)."""
    out: dict[str, Counter[Any]] = {}
    with db.admin_engine().connect() as conn:
        for relation in TIME_COLUMNS:
            if conn.execute(text("SELECT to_regclass(:r)"), {"r": relation}).scalar() is None:
                continue
            rows = conn.execute(
                text(f"SELECT t::text FROM {physical(conn, relation)} AS t")
            ).scalars()
            out[relation] = Counter(rows)
    return out


def test_each_org_keeps_its_window_to_the_microsecond(
    database: Database, app: Engine, orgs: dict[str, Org]
) -> None:
    expected_kept: dict[str, set[tuple[uuid.UUID, Any]]] = {r: set() for r in INSERTS}
    with database.admin_engine().begin() as conn:
        for relation in INSERTS:
            for org in orgs.values():
                gone, kept = boundary_rows(relation, org.days[CLASS_OF[relation]])
                insert(conn, relation, org.org_id, gone)
                insert(conn, relation, org.org_id, kept)
                expected_kept[relation].add((org.org_id, as_key(relation, kept)))
    report = run_retention(app, NOW)
    with database.admin_engine().connect() as conn:
        for relation in INSERTS:
            assert times(conn, relation) == expected_kept[relation], relation
    by_relation = {r.relation: r for r in report.relations}
    for relation in INSERTS:
        assert by_relation[relation].rows == {o.org_id: 1 for o in orgs.values()}, relation
    assert report.total_rows == len(INSERTS) * len(orgs)


def counts(db: Database) -> dict[str, Counter[uuid.UUID | None]]:
    """Rows per org of every relation retention covers that exists."""
    out: dict[str, Counter[uuid.UUID | None]] = {}
    with db.admin_engine().connect() as conn:
        for relation in TIME_COLUMNS:
            if conn.execute(text("SELECT to_regclass(:r)"), {"r": relation}).scalar() is None:
                continue
            has_org = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.columns "
                    "WHERE table_name = :r AND column_name = 'org_id'"
                ),
                {"r": relation},
            ).scalar()
            org = "org_id" if has_org else "NULL::uuid"
            rows = conn.execute(
                text(f"SELECT {org}, count(*) FROM {physical(conn, relation)} GROUP BY 1")
            )
            out[relation] = Counter({r[0]: r[1] for r in rows})
    return out


def children(conn: Connection, kind: StorageEngine, relation: str) -> dict[str, datetime]:
    """Partitions or chunks of ``relation`` (named as the report names them) -> range end."""
    if kind is StorageEngine.POSTGRES:
        query = "SELECT partition_name, range_end FROM aeos_partition_bounds(CAST(:r AS regclass))"
    else:
        query = (
            "SELECT format('%I.%I', chunk_schema, chunk_name), range_end "
            "FROM timescaledb_information.chunks WHERE hypertable_name = :r"
        )
    return {name: end for name, end in conn.execute(text(query), {"r": relation})}


def seed_boundaries(db: Database, orgs: dict[str, Org]) -> None:
    """For every org and relation, the last row that goes and the first that stays."""
    with db.admin_engine().begin() as conn:
        for relation in INSERTS:
            for org in orgs.values():
                for at in boundary_rows(relation, org.days[CLASS_OF[relation]]):
                    insert(conn, relation, org.org_id, at)


MIDNIGHT = datetime(2026, 11, 28, tzinfo=UTC)
HISTORY = 40  # days of spans seeded for the partition tests


def seed_span_history(db: Database, orgs: dict[str, Org], kind: StorageEngine) -> None:
    """Spans every 6 hours for 40 days for free, pro and ent, and one 60 days old.

    ``custom`` (spans kept 30 days) sends nothing, yet its window must keep partitions:
    which orgs have rows in a partition is not looked at.
    """
    with db.admin_engine().begin() as conn:
        if kind is StorageEngine.POSTGRES:
            act_as(conn, Scope(DbRole.WORKER))  # as the partition job does
            ensure_partitions(conn, MIDNIGHT, behind=timedelta(days=HISTORY), ahead=DAY)
            conn.execute(text("RESET ROLE"))
        for name in ("free", "pro", "ent"):
            for step in range(HISTORY * 4):
                insert(conn, "spans", orgs[name].org_id, MIDNIGHT - step * timedelta(hours=6))
        insert(conn, "spans", orgs["free"].org_id, MIDNIGHT - timedelta(days=60))


def test_whole_partitions_go_only_when_every_org_is_past_them(
    database: Database, app: Engine, orgs: dict[str, Org], engine_kind: StorageEngine
) -> None:
    seed_span_history(database, orgs, engine_kind)
    longest = MIDNIGHT - timedelta(days=30)  # custom's override
    with database.admin_engine().connect() as conn:
        before = children(conn, engine_kind, "spans")
        spans_before = {(o, t) for o, t in times(conn, "spans")}
    expired = {name for name, end in before.items() if end <= longest}
    assert expired, "the history reaches past the longest window"
    assert any(end == longest for end in before.values())  # one ends exactly there: it goes

    report = run_retention(app, MIDNIGHT, batch_size=7)

    spans = next(r for r in report.relations if r.relation == "spans")
    assert {d.name for d in spans.dropped} == expired
    with database.admin_engine().connect() as conn:
        assert set(children(conn, engine_kind, "spans")) == set(before) - expired
        spans_after = times(conn, "spans")
    days = {o.org_id: o.days["spans"] for o in orgs.values()}
    inside = {(o, t) for o, t in spans_before if t >= MIDNIGHT - timedelta(days=days[o])}
    assert spans_after == inside
    # Whatever was outside a window but in a partition still in use went in batches of 7.
    in_kept = {(o, t) for o, t in spans_before - inside if t >= longest}
    if engine_kind is StorageEngine.POSTGRES:
        in_kept.add((orgs["free"].org_id, MIDNIGHT - timedelta(days=60)))  # DEFAULT partition
    per_org = Counter(o for o, _ in in_kept)
    assert spans.rows == per_org
    if engine_kind is StorageEngine.TIMESCALE:  # a batch is a segment: an org in a chunk
        assert spans.batches == len({(o, t.date()) for o, t in in_kept})
    else:
        assert spans.batches == sum(-(-n // 7) for n in per_org.values())
    assert spans.busy == []


def test_dry_run_reports_what_a_run_prunes_and_changes_nothing(
    database: Database, app: Engine, orgs: dict[str, Org], engine_kind: StorageEngine
) -> None:
    seed_boundaries(database, orgs)
    seed_span_history(database, orgs, engine_kind)
    before = snapshot(database)
    before_counts = counts(database)
    with database.admin_engine().connect() as conn:
        before_children = children(conn, engine_kind, "spans")

    dry = run_retention(app, NOW, dry_run=True, batch_size=5)

    assert snapshot(database) == before
    with database.admin_engine().connect() as conn:
        assert children(conn, engine_kind, "spans") == before_children
    assert dry.dry_run
    assert dry.total_rows > 0
    real = run_retention(app, NOW, batch_size=5)
    after_counts = counts(database)
    for dry_rel, real_rel in zip(dry.relations, real.relations, strict=True):
        relation = dry_rel.relation
        if dry_rel.skipped:
            assert relation not in before_counts
            continue
        removed = before_counts[relation] - after_counts[relation]
        assert dry_rel.rows == dict(removed), relation
        assert [d.name for d in dry_rel.dropped] == [d.name for d in real_rel.dropped]


def test_a_run_for_one_org_touches_only_that_org(
    database: Database, app: Engine, orgs: dict[str, Org], engine_kind: StorageEngine
) -> None:
    seed_boundaries(database, orgs)
    seed_span_history(database, orgs, engine_kind)
    before = counts(database)
    with database.admin_engine().connect() as conn:
        before_children = children(conn, engine_kind, "spans")
    free = orgs["free"].org_id

    report = run_retention(app, NOW, org_id=free)

    after = counts(database)
    for relation, rows in before.items():
        changed = {org for org in rows if rows[org] != after[relation][org]}
        assert changed <= {free}, relation
    assert sum(before["events"].values()) - sum(after["events"].values()) == 1
    assert all(not r.dropped for r in report.relations)
    with database.admin_engine().connect() as conn:
        assert children(conn, engine_kind, "spans") == before_children
    with pytest.raises(NotFoundError):
        run_retention(app, NOW, org_id=uuid.uuid4())


def test_relations_not_created_yet_are_skipped(
    database: Database, app: Engine, orgs: dict[str, Org]
) -> None:
    report = run_retention(app, NOW, dry_run=True)
    by_relation = {r.relation: r for r in report.relations}
    assert set(by_relation) == set(TIME_COLUMNS)
    with database.admin_engine().connect() as conn:
        missing = {
            r
            for r in TIME_COLUMNS
            if conn.execute(text("SELECT to_regclass(:r)"), {"r": r}).scalar() is None
        }
    assert {r for r, rep in by_relation.items() if rep.skipped == "does not exist"} == missing
    assert [r.relation for r in report.relations].index("traces") > [
        r.relation for r in report.relations
    ].index("spans")


def test_traces_go_once_outside_the_window_and_their_spans_are_gone(
    database: Database, app: Engine, orgs: dict[str, Org]
) -> None:
    free = orgs["free"].org_id  # spans and traces kept 3 days
    old, recent = NOW - timedelta(days=5), NOW - timedelta(days=1)
    gone, kept_by_span, kept = b"\x01" * 16, b"\x02" * 16, b"\x03" * 16
    with database.admin_engine().begin() as conn:
        for trace, start, span_times in [
            (gone, old, [old, old + timedelta(hours=1)]),
            (kept_by_span, old, [old, recent]),  # a long trace: one span still inside
            (kept, recent, [recent]),
        ]:
            conn.execute(
                text(
                    "INSERT INTO traces (org_id, trace_id, start_time, end_time, duration_ms) "
                    "VALUES (:o, :t, :s, :s, 1)"
                ),
                {"o": free, "t": trace, "s": start},
            )
            for i, at in enumerate(span_times):
                conn.execute(
                    text(
                        "INSERT INTO spans (org_id, trace_id, span_id, name, start_time, "
                        "end_time, duration_ms) VALUES (:o, :t, :s, 'op', :at, :at, 1)"
                    ),
                    {"o": free, "t": trace, "s": bytes([i]) * 8, "at": at},
                )

    dry = run_retention(app, NOW, dry_run=True)
    run_retention(app, NOW)

    with database.admin_engine().connect() as conn:
        traces = set(conn.execute(text("SELECT trace_id FROM traces")).scalars())
        spans = Counter(conn.execute(text("SELECT trace_id FROM spans")).scalars())
    assert traces == {kept_by_span, kept}
    assert spans == {kept_by_span: 1, kept: 1}
    dry_traces = next(r for r in dry.relations if r.relation == "traces")
    assert dry_traces.rows == {free: 1}


def _drop_relation(conn: Connection, name: str) -> None:
    cagg = conn.execute(
        text("SELECT to_regclass('timescaledb_information.continuous_aggregates')")
    ).scalar()
    if (
        cagg
        and conn.execute(
            text(
                "SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = :n"
            ),
            {"n": name},
        ).first()
    ):
        conn.execute(text(f"DROP MATERIALIZED VIEW {name} CASCADE"))
        return
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:n)"), {"n": name}
    ).scalar()
    if kind is not None:
        what = {"v": "VIEW", "m": "MATERIALIZED VIEW"}.get(kind, "TABLE")
        conn.execute(text(f"DROP {what} {name} CASCADE"))


def test_relations_without_org_go_by_the_longest_window(
    database: Database, app: Engine, orgs: dict[str, Org]
) -> None:
    longest = max(o.days["rollup_1h"] for o in orgs.values())  # ent: 180 days
    with database.admin_engine().begin() as conn:
        _drop_relation(conn, "platform_red_1h")
        conn.execute(text("CREATE TABLE platform_red_1h (bucket timestamptz NOT NULL, n bigint)"))
        conn.execute(text("GRANT SELECT, DELETE ON platform_red_1h TO aeos_worker"))
        gone, kept = boundary_rows("platform_red_1h", longest)
        for at in (gone - DAY, gone, kept, NOW):
            conn.execute(text("INSERT INTO platform_red_1h VALUES (:t, 1)"), {"t": at})

    report = run_retention(app, NOW)

    with database.admin_engine().connect() as conn:
        left = set(conn.execute(text("SELECT bucket FROM platform_red_1h")).scalars())
    assert left == {kept, NOW}
    platform = next(r for r in report.relations if r.relation == "platform_red_1h")
    assert platform.rows == {None: 2}
    assert report.as_dict()["relations"]["platform_red_1h"]["rows"] == {"*": 2}


def _json_columns(conn: Connection, relation: str) -> set[str]:
    return set(
        conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = :r AND data_type = 'jsonb'"
            ),
            {"r": relation},
        ).scalars()
    )


def _norm(value: Any, is_json: bool) -> Any:
    if is_json:
        return json.dumps(json.loads(value) if isinstance(value, str) else value, sort_keys=True)
    if isinstance(value, uuid.UUID | Decimal):  # numeric without a scale is exported as text
        return str(value)
    if isinstance(value, list):
        return tuple(_norm(v, False) for v in value)
    return value


def _row_key(row: dict[str, Any], json_columns: set[str]) -> tuple[Any, ...]:
    return tuple(sorted((k, _norm(v, k in json_columns)) for k, v in row.items()))


def db_rows(db: Database, relation: str) -> Counter[tuple[Any, ...]]:
    """Every row of ``relation``, comparable with rows read back from Parquet."""
    with db.admin_engine().connect() as conn:
        json_columns = _json_columns(conn, relation)
        rows = conn.execute(text(f"SELECT * FROM {physical(conn, relation)}")).mappings()
        return Counter(_row_key(dict(r), json_columns) for r in rows)


def parquet_rows(db: Database, files: list[Path]) -> dict[str, Counter[tuple[Any, ...]]]:
    """Rows of the files, per relation (the file name's first part)."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    with db.admin_engine().connect() as conn:
        for path in files:
            relation = path.name.split(".")[0]
            json_columns = _json_columns(conn, relation)
            rows = pq.read_table(path).to_pylist()
            out.setdefault(relation, Counter()).update(_row_key(r, json_columns) for r in rows)
    return out


def test_export_holds_exactly_the_pruned_rows(
    database: Database,
    app: Engine,
    orgs: dict[str, Org],
    engine_kind: StorageEngine,
    tmp_path: Path,
) -> None:
    seed_boundaries(database, orgs)
    seed_span_history(database, orgs, engine_kind)
    before = {r: db_rows(database, r) for r in INSERTS}

    report = run_retention(app, NOW, export_dir=tmp_path, batch_size=4)

    after = {r: db_rows(database, r) for r in INSERTS}
    assert report.export_dir is not None
    assert report.export_dir.parent == tmp_path
    files = sorted(report.export_dir.iterdir())
    assert sorted(p for r in report.relations for p in r.files) == files
    assert not [f for f in files if f.name.startswith(".")]  # no temporary file left
    exported = parquet_rows(database, files)
    for relation in INSERTS:
        assert exported.get(relation, Counter()) == before[relation] - after[relation], relation
    spans = next(r for r in report.relations if r.relation == "spans")
    assert spans.dropped  # whole partitions were exported too, with their row counts
    assert sum(d.rows or 0 for d in spans.dropped) + sum(spans.rows.values()) == sum(
        exported["spans"].values()
    )
    schema = pq.read_schema(next(f for f in files if f.name.startswith("spans.")))
    assert schema.field("org_id").type == pa.string()
    assert schema.field("trace_id").type == pa.binary()
    assert schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("attributes").type == pa.string()
    assert schema.field("links").type == pa.list_(pa.binary())
    assert schema.field("kind").type == pa.int16()
    costs = pq.read_schema(next(f for f in files if f.name.startswith("cost_line_items.")))
    assert costs.field("cost_usd").type == pa.decimal128(20, 10)
    daily = pq.read_schema(next(f for f in files if f.name.startswith("cost_daily.")))
    assert daily.field("bucket").type == pa.timestamp("us", tz="UTC")
    again = run_retention(app, NOW, export_dir=tmp_path)
    assert again.total_rows == 0
    assert again.export_dir != report.export_dir  # runs never overwrite each other


def test_an_export_that_cannot_start_prunes_nothing(
    database: Database, app: Engine, orgs: dict[str, Org], tmp_path: Path
) -> None:
    seed_boundaries(database, orgs)
    before = snapshot(database)
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    with pytest.raises(RetentionExportError, match="cannot create the export directory"):
        run_retention(app, NOW, export_dir=not_a_directory)
    assert snapshot(database) == before


def test_a_failed_export_prunes_nothing_it_did_not_write(
    database: Database,
    app: Engine,
    orgs: dict[str, Org],
    engine_kind: StorageEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_boundaries(database, orgs)
    seed_span_history(database, orgs, engine_kind)
    before = {r: db_rows(database, r) for r in INSERTS}
    written = _retention_export._write_file
    calls: list[Path] = []

    def disk_full_on_third_file(path: Path, schema: pa.Schema, chunks: Any) -> int:
        rows = [chunk for chunk in chunks if chunk]
        if rows:  # empty partitions make no file
            calls.append(path)
        if len(calls) == 3:
            path.write_bytes(b"PAR1 half a file")
            raise OSError(28, "No space left on device")
        return written(path, schema, rows)

    monkeypatch.setattr(_retention_export, "_write_file", disk_full_on_third_file)
    with pytest.raises(RetentionExportError, match="No space left on device") as failed:
        run_retention(app, NOW, export_dir=tmp_path, batch_size=4)

    after = {r: db_rows(database, r) for r in INSERTS}
    directory = failed.value.report.export_dir
    assert directory is not None
    files = sorted(directory.iterdir())
    assert len(files) == 2
    assert not [f for f in files if f.name.startswith(".")]
    exported = parquet_rows(database, files)
    for relation in INSERTS:
        assert exported.get(relation, Counter()) == before[relation] - after[relation], relation
    assert sum(sum(c.values()) for c in exported.values()) == 2  # two single-row batches


def test_continuous_aggregates_are_pruned_in_their_materialization(
    database: Database, app: Engine, orgs: dict[str, Org], engine_kind: StorageEngine
) -> None:
    if engine_kind is not StorageEngine.TIMESCALE:
        pytest.skip("continuous aggregates exist only on TimescaleDB")
    conninfo = database.admin_url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # What migration 0006 does, in miniature: an org rollup and a platform rollup.
        for name in ("org_red_1h", "platform_red_1h"):
            with database.admin_engine().begin() as sa_conn:
                _drop_relation(sa_conn, name)
        # Their source: a hypertable without row-level security (TimescaleDB refuses to
        # aggregate one with it), holding a span every 6 hours for 200 days per org.
        conn.execute("CREATE TABLE red_source (org_id uuid NOT NULL, time timestamptz NOT NULL)")
        conn.execute("SELECT create_hypertable('red_source', by_range('time', INTERVAL '1 day'))")
        for name in ("free", "pro", "ent"):
            conn.execute(
                "INSERT INTO red_source SELECT %s, t FROM generate_series("
                "%s::timestamptz - interval '200 days', %s::timestamptz, interval '6 hours') AS t",
                [orgs[name].org_id, NOW, NOW],
            )
        for name, org in [("org_red_1h", "org_id, "), ("platform_red_1h", "")]:
            group = "1, 2" if org else "1"
            conn.execute(
                f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous) AS "
                f"SELECT time_bucket('1 hour', time) AS bucket, {org}count(*) AS n "
                f"FROM red_source GROUP BY {group} WITH NO DATA"
            )
            conn.execute(f"CALL refresh_continuous_aggregate('{name}', NULL, NULL)")
            conn.execute(f"GRANT SELECT, DELETE ON {name} TO aeos_worker")
        org_before = set(conn.execute("SELECT org_id, bucket FROM org_red_1h").fetchall())
        platform_before = {r[0] for r in conn.execute("SELECT bucket FROM platform_red_1h")}

    report = run_retention(app, NOW)

    with psycopg.connect(conninfo, autocommit=True) as conn:
        org_after = set(conn.execute("SELECT org_id, bucket FROM org_red_1h").fetchall())
        platform_after = {r[0] for r in conn.execute("SELECT bucket FROM platform_red_1h")}
    hour = timedelta(hours=1)
    days = {o.org_id: o.days["rollup_1h"] for o in orgs.values()}
    assert org_after == {(o, b) for o, b in org_before if b + hour > NOW - timedelta(days=days[o])}
    longest = NOW - timedelta(days=max(days.values()))
    assert platform_after == {b for b in platform_before if b + hour > longest}
    assert platform_after != platform_before
    by_relation = {r.relation: r for r in report.relations}
    assert by_relation["org_red_1h"].kind == "continuous_aggregate"
    assert by_relation["org_red_1h"].dropped  # whole chunks of the materialization
    assert by_relation["org_red_1h"].rows[orgs["free"].org_id] > 0
    assert by_relation["platform_red_1h"].rows[None] > 0


def test_a_busy_partition_is_left_for_the_next_run(
    database: Database, app: Engine, orgs: dict[str, Org], engine_kind: StorageEngine
) -> None:
    seed_span_history(database, orgs, engine_kind)
    with database.admin_engine().connect() as conn:
        expired = {
            n for n, end in children(conn, engine_kind, "spans").items() if end <= NOW - 30 * DAY
        }
    jobs_may_have_run(app)  # before the reader: a columnstore job would wait for it forever
    reader = database.admin_engine().connect()
    try:
        reader.execute(text("SELECT count(*) FROM spans"))  # a long query holds its locks
        first = run_retention(app, MIDNIGHT, settle=False)
    finally:
        reader.rollback()
        reader.close()
    spans = next(r for r in first.relations if r.relation == "spans")
    assert spans.dropped == []
    assert set(spans.busy) == expired
    assert sum(spans.rows.values()) > 0  # deleting rows does not wait for the reader
    second = run_retention(app, MIDNIGHT)
    spans = next(r for r in second.relations if r.relation == "spans")
    assert {d.name for d in spans.dropped} == expired
    assert spans.busy == []


def test_one_run_at_a_time(database: Database, app: Engine, orgs: dict[str, Org]) -> None:
    with database.admin_engine().connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": retention.RETENTION_LOCK_KEY})
        with pytest.raises(retention.RetentionBusyError, match="in progress"):
            run_retention(app, NOW)
        assert run_retention(app, NOW, dry_run=True).dry_run  # a dry run needs no lock
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": retention.RETENTION_LOCK_KEY})
    run_retention(app, NOW)


@pytest.mark.parametrize("role", ["aeos_worker", "aeos_staff", "aeos_support"])
def test_tiers_are_seeded_and_readable(database: Database, role: str) -> None:
    with database.admin_engine().begin() as conn:
        conn.execute(text(f"SET LOCAL ROLE {role}"))
        tiers = {
            (plan, data_class): days
            for plan, data_class, days in conn.execute(text("SELECT * FROM retention_tiers"))
        }
    seed = {
        "events": (7, 14, 30),
        "spans": (3, 7, 14),
        "rollup_1m": (7, 14, 30),
        "rollup_1h": (30, 90, 180),
        "rollup_1d": (90, 365, 730),
        "cost_line_items": (90, 365, 730),
    }
    assert tiers == {
        (plan, data_class): days[i]
        for data_class, days in seed.items()
        for i, plan in enumerate(("free", "pro", "enterprise"))
    }


def test_tenants_read_the_tiers_but_do_not_change_them(database: Database) -> None:
    """Plan defaults hold no org's data: tenants read them (migration 0016), never write."""
    with database.admin_engine().begin() as conn:
        conn.execute(text("SET LOCAL ROLE aeos_tenant"))
        assert conn.execute(text("SELECT count(*) FROM retention_tiers")).scalar_one() == 18
        with pytest.raises(DBAPIError, match="permission denied"):
            conn.execute(text("UPDATE retention_tiers SET days = 1"))


@pytest.mark.parametrize(
    "overrides",
    ['{"spanz": 3}', '{"spans": 0}', '{"spans": -1}', '{"spans": 1.5}', '{"spans": "7"}',
     '{"spans": null}', '{"spans": 36501}', "[]", '"7"'],
)  # fmt: skip
def test_the_database_refuses_bad_overrides(
    database: Database, orgs: dict[str, Org], overrides: str
) -> None:
    with database.admin_engine().begin() as conn:
        conn.execute(text("""UPDATE orgs SET retention_overrides = '{"rollup_1d": 36500}'"""))
        with pytest.raises(IntegrityError, match="ck_orgs_retention_overrides"):
            conn.execute(
                text("UPDATE orgs SET retention_overrides = CAST(:o AS jsonb) WHERE name = 'free'"),
                {"o": overrides},
            )


def test_admin_refuses_bad_overrides(database: Database, orgs: dict[str, Org]) -> None:
    with scoped_transaction(database.admin_engine(), Scope(DbRole.STAFF)) as conn:
        for changes, message in [
            ({"spanz": 3}, "unknown data class 'spanz'"),
            ({"spans": 0}, "outside 1..36500"),
            ({"spans": 2.5}, "not a whole number of days"),
            ({"spans": True}, "not a whole number of days"),
        ]:
            with pytest.raises(InvalidInputError, match=message):
                admin.set_retention(conn, "free", changes)  # type: ignore[arg-type]
        windows = admin.set_retention(conn, "custom", {"events": None, "rollup_1d": 1000})
    assert windows.overrides == {"spans": 30, "rollup_1d": 1000}
    assert windows.days["events"] == 7  # back to the free tier
    assert windows.days["rollup_1d"] == 1000


def test_drop_functions_refuse_what_has_not_expired(
    database: Database, orgs: dict[str, Org], engine_kind: StorageEngine
) -> None:
    seed_span_history(database, orgs, engine_kind)
    with database.app_engine().connect() as conn:
        if engine_kind is StorageEngine.POSTGRES:
            calls = [
                ("SELECT aeos_drop_partition('spans', 'spans_p20261127', :t)", "ends at"),
                ("SELECT aeos_drop_partition('spans', 'orgs', :t)", "not a range partition"),
                ("SELECT aeos_drop_partition('spans', 'spans_default', :t)", "not a range"),
            ]
        else:
            calls = [("SELECT aeos_drop_chunks('orgs', NULL, :t)", "not a hypertable")]
        calls.append(("SELECT aeos_retention_lock('orgs')", "not a partition or a chunk"))
        for sql, message in calls:
            with conn.begin():
                act_as(conn, Scope(DbRole.WORKER))
                with pytest.raises(DBAPIError, match=message):
                    conn.execute(text(sql), {"t": MIDNIGHT - 30 * DAY})

"""Trace sampling on both engines: the keep decision (SQL = Python), ``traces.sampled`` kept
at ingest, and the sweep that prunes the spans of unsampled traces after the window."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.ingest.rows import Batch, EventRow, LlmCall, SpanRow
from storage.ingest.writer import IngestWriter
from storage.jobs._sql import DELETE_SPANS
from storage.jobs.partitions import ensure_partitions
from storage.jobs.sampling import (
    DEFAULT_SAMPLE_PERCENT,
    sweep_traces,
    trace_keep,
    trace_sampled,
)
from storage.migrate import StorageEngine
from tests.conftest import settle as jobs_may_have_run

# Both TimescaleDB job states (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("background_jobs")

T0 = datetime(2026, 11, 18, tzinfo=UTC)
WINDOW = timedelta(hours=24)
NOW = T0 + timedelta(hours=30)
CUTOFF = NOW - WINDOW  # T0 + 6 h
US = timedelta(microseconds=1)


def ns(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // US * 1000


def span(
    trace_id: bytes, n: int, start: datetime, end: datetime, *, error: bool = False
) -> SpanRow:
    return SpanRow(
        trace_id=trace_id, span_id=n.to_bytes(8, "big"), parent_span_id=None if n == 1 else b"\0" * 7 + b"\1",
        trace_state=None, name=f"op-{n}", kind=1, start_ns=ns(start), end_ns=ns(end),
        status_code=2 if error else 0, status_message=None, subsystem="MOSAIC",
        service_name="planner", agent_id="agent-1", fleet_id=None, task_run_id=None,
        gen_ai_operation=None, gen_ai_provider=None, gen_ai_model=None, input_tokens=None,
        output_tokens=None, scope_name="test", attributes={}, resource_attributes={},
    )  # fmt: skip


def trace(trace_id: bytes, start: datetime, end: datetime, *, error: bool = False) -> list[SpanRow]:
    """A root span over [start, end] and a child in the middle (the child may fail)."""
    middle = start + (end - start) / 2
    return [span(trace_id, 1, start, end), span(trace_id, 2, start, middle, error=error)]


def extras(trace_id: bytes, at: datetime) -> tuple[EventRow, LlmCall]:
    """An event and an LLM call (a cost line item) of the trace's child span."""
    event = EventRow(
        event_id=trace_id, time_ns=ns(at), observed_ns=None, severity="info", severity_number=9,
        subsystem="MOSAIC", event_type="log", agent_id="agent-1", fleet_id=None, task_run_id=None,
        trace_id=trace_id, span_id=(2).to_bytes(8, "big"), service_name="planner",
        message="hello", payload={}, resource_attributes={},
    )  # fmt: skip
    call = LlmCall(
        trace_id, (2).to_bytes(8, "big"), ns(at), None, "agent-1", "MOSAIC", "openai",
        "gpt-4o", 1000, 100, 0, 0, None,
    )  # fmt: skip
    return event, call


def ingest(db: Database, *batches: Batch) -> None:
    """Writes the batches one after the other through the real ingest writer."""

    async def write() -> None:
        writer = IngestWriter(db.app_conninfo(), flushers=1)
        await writer.start()
        try:
            for batch in batches:
                await writer.write(batch)
        finally:
            await writer.close()

    asyncio.run(write())


def new_org(db: Database, percent: str | None = None) -> uuid.UUID:
    with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        created = admin.create_org(conn, f"org-{uuid.uuid4().hex[:8]}", "pro")
        if percent is not None:
            admin.set_trace_sample_percent(conn, created.name, percent)
    return created.org_id


def ids(rng: random.Random, count: int) -> list[bytes]:
    return [rng.randbytes(16) for _ in range(count)]


def traces_with_spans(db: Database, org: uuid.UUID) -> set[bytes]:
    with db.admin_engine().connect() as conn:
        rows = conn.execute(
            text("SELECT DISTINCT trace_id FROM spans WHERE org_id = :o"), {"o": org}
        ).all()
    return {bytes(r.trace_id) for r in rows}


def trace_rows(db: Database, org: uuid.UUID) -> dict[bytes, Any]:
    with db.admin_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT trace_id, sampled, spans_pruned_at, error_count, span_count "
                "FROM traces WHERE org_id = :o"
            ),
            {"o": org},
        ).all()
    return {bytes(r.trace_id): r for r in rows}


def count(db: Database, table: str) -> int:
    with db.admin_engine().connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def sweep(db: Database, **kwargs: Any) -> Any:
    """A sweep, at a moment TimescaleDB's jobs may have run (see ``tests.conftest``)."""
    jobs_may_have_run(db)
    return sweep_traces(db.app_engine(), kwargs.pop("now", NOW), window=WINDOW, **kwargs)


def test_sql_and_python_take_the_same_decision(database: Database) -> None:
    rng = random.Random(4)
    trace_ids = [*ids(rng, 20_000), b"", b"\0", bytes(16), b"\xff" * 16, b"\x01" * 8]
    percents = ["0", "0.01", "10", "33.33", "50", "99.99", "100", "12.345", "0.005"]
    with database.app_engine().connect() as conn:
        for percent in percents:
            in_sql = conn.execute(
                text("SELECT aeos_trace_keep(t, CAST(:p AS numeric)) FROM unnest(:ids) AS t"),
                {"p": percent, "ids": trace_ids},
            ).scalars()
            in_python = [trace_keep(t, percent) for t in trace_ids]
            assert list(in_sql) == in_python, percent
    for share in (1, 10, 50, 90):
        kept = sum(trace_keep(t, share) for t in trace_ids[:20_000]) / 20_000
        assert abs(kept - share / 100) < 0.01, (share, kept)


def test_sampled_is_set_at_ingest_and_the_sweep_prunes_the_others(database: Database) -> None:
    org = new_org(database)  # the default: 10 %
    rng = random.Random(7)
    old = ids(rng, 1200)
    errors = set(old[::7])
    young = ids(rng, 50)
    batch = Batch(org)
    for i, t in enumerate(old):
        start = T0 + timedelta(seconds=i)
        batch.spans.extend(trace(t, start, start + timedelta(seconds=2), error=t in errors))
        event, call = extras(t, start)
        batch.events.append(event)
        batch.llm_calls.append(call)
    for t in young:
        batch.spans.extend(trace(t, NOW - timedelta(hours=1), NOW))
    ingest(database, batch)
    rows = trace_rows(database, org)
    assert {t: r.sampled for t, r in rows.items()} == {
        t: trace_sampled(t, int(t in errors), DEFAULT_SAMPLE_PERCENT) for t in [*old, *young]
    }
    events, costs = count(database, "events"), count(database, "cost_line_items")

    report = sweep(database)

    kept = {t for t in old if t in errors or trace_keep(t, 10)}
    assert traces_with_spans(database, org) == kept | set(young)
    ok = [t for t in old if t not in errors]
    kept_share = sum(t in kept for t in ok) / len(ok)
    assert 0.07 < kept_share < 0.13, kept_share
    assert report.traces_pruned == len(old) - len(kept)
    assert report.spans_deleted == 2 * report.traces_pruned
    assert report.cutoff == CUTOFF
    rows = trace_rows(database, org)
    assert len(rows) == len(old) + len(young)  # the summaries stay
    assert {t for t, r in rows.items() if r.spans_pruned_at == NOW} == set(old) - kept
    assert all(rows[t].spans_pruned_at is None for t in kept | set(young))
    assert (count(database, "events"), count(database, "cost_line_items")) == (events, costs)
    # A second sweep has nothing to do.
    again = sweep(database, now=NOW + timedelta(minutes=5))
    assert (again.traces_pruned, again.spans_deleted, again.batches) == (0, 0, 0)
    assert traces_with_spans(database, org) == kept | set(young)
    assert trace_rows(database, org) == rows


def test_nothing_younger_than_the_window_is_deleted(database: Database) -> None:
    org = new_org(database, "0")
    before, at_cutoff, spanning, young = (bytes([n]) * 16 for n in range(1, 5))
    ingest(
        database,
        Batch(
            org,
            spans=[
                *trace(before, CUTOFF - timedelta(hours=1), CUTOFF - US),
                *trace(at_cutoff, CUTOFF - timedelta(hours=1), CUTOFF),
                *trace(spanning, CUTOFF - timedelta(hours=3), CUTOFF + timedelta(minutes=1)),
                *trace(young, CUTOFF + US, CUTOFF + timedelta(hours=1)),
            ],
        ),
    )
    report = sweep(database)
    assert report.traces_pruned == 1
    assert traces_with_spans(database, org) == {at_cutoff, spanning, young}


@pytest.mark.parametrize("percent", ["0", "100", "25"])
def test_each_org_gets_its_own_percentage(database: Database, percent: str) -> None:
    mine, other = new_org(database, percent), new_org(database, "100")
    rng = random.Random(percent)
    trace_ids = ids(rng, 400)
    failing = set(trace_ids[:20])
    spans = [s for t in trace_ids for s in trace(t, T0, T0 + US * 10, error=t in failing)]
    ingest(database, Batch(mine, spans=spans), Batch(other, spans=spans))
    sweep(database)
    expected = {t for t in trace_ids if t in failing or trace_keep(t, percent)}
    assert traces_with_spans(database, mine) == expected
    assert traces_with_spans(database, other) == set(trace_ids)
    if percent == "0":
        assert expected == failing
    if percent == "100":
        assert expected == set(trace_ids)


def test_a_late_error_keeps_the_trace(database: Database) -> None:
    org = new_org(database, "0")
    early, swept = b"\x0a" * 16, b"\x0b" * 16
    ingest(
        database,
        Batch(
            org,
            spans=trace(early, T0, T0 + timedelta(seconds=1))
            + trace(swept, T0, T0 + timedelta(seconds=1)),
        ),
    )
    assert not trace_rows(database, org)[early].sampled
    assert sweep(database, now=T0 + timedelta(hours=1)).traces_pruned == 0  # not old enough
    late_error = span(early, 3, T0 + timedelta(seconds=2), T0 + timedelta(seconds=3), error=True)
    ingest(database, Batch(org, spans=[late_error]))
    assert trace_rows(database, org)[early].sampled
    sweep(database)
    assert traces_with_spans(database, org) == {early}
    with database.admin_engine().connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM spans WHERE trace_id = :t"), {"t": early}
            ).scalar_one()
            == 3
        )
    # An error after the sweep keeps what arrives from then on; the mark says spans are gone.
    ingest(database, Batch(org, spans=[replace(late_error, trace_id=swept)]))
    row = trace_rows(database, org)[swept]
    assert row.sampled
    assert row.spans_pruned_at == NOW
    sweep(database, now=NOW + timedelta(days=1))
    assert traces_with_spans(database, org) == {early, swept}


def test_late_spans_of_a_pruned_trace_are_pruned_again(database: Database) -> None:
    org = new_org(database, "0")
    t = b"\x0c" * 16
    ingest(database, Batch(org, spans=trace(t, T0, T0 + timedelta(seconds=1))))
    assert sweep(database).traces_pruned == 1
    late = span(t, 3, T0 + timedelta(seconds=5), T0 + timedelta(seconds=6))
    ingest(database, Batch(org, spans=[late]))
    row = trace_rows(database, org)[t]
    assert (row.sampled, row.spans_pruned_at, row.span_count) == (False, None, 3)
    assert traces_with_spans(database, org) == {t}
    later = NOW + timedelta(minutes=5)
    report = sweep(database, now=later)
    assert (report.traces_pruned, report.spans_deleted) == (1, 1)
    assert traces_with_spans(database, org) == set()
    assert trace_rows(database, org)[t].spans_pruned_at == later


def test_the_sweep_works_in_bounded_batches(database: Database) -> None:
    org = new_org(database, "0")
    trace_ids = ids(random.Random(9), 50)
    ingest(database, Batch(org, spans=[s for t in trace_ids for s in trace(t, T0, T0 + US)]))
    report = sweep(database, batch_size=7)
    assert (report.traces_pruned, report.spans_deleted, report.batches) == (50, 100, 8)
    assert traces_with_spans(database, org) == set()


def _plan(engine: Engine, params: dict[str, Any]) -> str:
    with engine.begin() as conn:
        rows = conn.execute(text("EXPLAIN " + DELETE_SPANS), params).scalars()
        return "\n".join(rows)


def test_the_delete_reads_only_the_partitions_of_its_batch(
    database: Database, engine_kind: StorageEngine
) -> None:
    org = new_org(database, "0")
    engine = database.admin_engine()
    if engine_kind is StorageEngine.POSTGRES:
        with scoped_transaction(engine, Scope(DbRole.WORKER)) as conn:
            ensure_partitions(conn, T0, behind=timedelta(days=3), ahead=timedelta(days=3))
    days = [T0 + timedelta(days=d, hours=1) for d in range(-2, 3)]
    trace_ids = [bytes([d + 10]) * 16 for d in range(len(days))]
    ingest(
        database,
        Batch(
            org,
            spans=[s for t, d in zip(trace_ids, days, strict=True) for s in trace(t, d, d + US)],
        ),
    )
    with engine.connect() as conn:
        relations = (
            conn.execute(text("SELECT DISTINCT tableoid::regclass::text FROM spans"))
            .scalars()
            .all()
        )
    assert len(relations) == len(days)  # one partition (chunk) per day
    jobs_may_have_run(database)  # jobs-ran: the chunks are compressed
    plan = _plan(
        engine,
        {
            "org": org, "trace_ids": [trace_ids[2]], "starts": [days[2]],
            "ends": [days[2] + US], "lo": days[2], "hi": days[2] + US,
        },
    )  # fmt: skip
    scanned = [r for r in relations if r.split(".")[-1] in plan]
    assert len(scanned) == 1, plan


def test_a_window_within_the_rollup_refresh_window_is_refused_on_timescale(
    database: Database, engine_kind: StorageEngine
) -> None:
    """Pruning raw spans that TimescaleDB may still re-aggregate would shrink rollups."""
    engine = database.app_engine()
    short = timedelta(hours=10)
    if engine_kind is StorageEngine.TIMESCALE:
        with pytest.raises(ValueError, match="AEOS_SAMPLING_WINDOW_HOURS"):
            sweep_traces(engine, NOW, window=short)
    else:  # rollups are maintained at ingest: any window is safe
        assert sweep_traces(engine, NOW, window=short).traces_pruned == 0

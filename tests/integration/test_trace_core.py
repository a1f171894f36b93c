"""The trace-query core on both engines: traces by id, search, services, dependencies,
task runs, pruned and partial traces, and tenancy (the database decides what is seen)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Connection, text

from storage import admin
from storage.database import Database
from storage.errors import InvalidInputError, NotFoundError
from storage.ingest.rows import Batch, EventRow, LlmCall, SpanRow, TaskRunSighting
from storage.ingest.writer import IngestWriter
from storage.jobs.sampling import sweep_traces
from storage.read import traces as core
from storage.read.trace_view import analyse
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Recent (the services list reads the last hours of rollups), with odd microseconds.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30) + timedelta(microseconds=7)


def us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def span(
    tid: bytes, n: int, parent: int | None, start_us: int, end_us: int, **kw: object
) -> SpanRow:
    fields: dict[str, object] = dict(
        trace_id=tid, span_id=sid(n), parent_span_id=sid(parent) if parent else None,
        trace_state=None, name=f"op-{n}", kind=2, start_ns=start_us * 1000 + 123,
        end_ns=end_us * 1000 + 456, status_code=0, status_message=None, subsystem="MOSAIC",
        service_name="planner", agent_id="agent-1", fleet_id=None, task_run_id=None,
        gen_ai_operation=None, gen_ai_provider=None, gen_ai_model=None, input_tokens=None,
        output_tokens=None, scope_name="aeos.test", attributes={"n": n},
        resource_attributes={"service.name": "planner", "host.name": "h1"},
    )  # fmt: skip
    fields.update(kw)
    return SpanRow(**fields)  # type: ignore[arg-type]


def ingest(db: Database, *batches: Batch) -> None:
    async def write() -> None:
        writer = IngestWriter(db.app_conninfo(), flushers=1)
        await writer.start()
        try:
            for batch in batches:
                await writer.write(batch)
        finally:
            await writer.close()

    asyncio.run(write())


def new_org(db: Database, sample_percent: str | None = None) -> uuid.UUID:
    with db.admin_engine().begin() as conn:
        org = admin.create_org(conn, f"org-{uuid.uuid4().hex[:8]}", "pro")
        if sample_percent is not None:
            admin.set_trace_sample_percent(conn, org.name, sample_percent)
    return org.org_id


@contextmanager
def tenant(db: Database, org: uuid.UUID) -> Iterator[Connection]:
    with scoped_transaction(db.app_engine(), Scope(DbRole.TENANT, org)) as conn:
        yield conn


@contextmanager
def support(db: Database) -> Iterator[Connection]:
    with scoped_transaction(db.app_engine(), Scope(DbRole.SUPPORT)) as conn:
        yield conn


def task_trace(tid: bytes, base: int) -> Batch:
    """A task run: root (planner) → chat (llm service) with an event and a link,
    → tool (tools service, failing), and an async job outliving the root."""
    spans = [
        span(tid, 1, None, base, base + 100_000, name="task_run plan", task_run_id="run-1",
             attributes={"mosaic.task_run.id": "run-1", "mosaic.task.id": "t-1"}),
        span(tid, 2, 1, base + 10_000, base + 60_000, name="chat gpt-4o", service_name="llm",
             kind=3, gen_ai_provider="openai", gen_ai_model="gpt-4o", input_tokens=1000,
             output_tokens=100, links=[b"\x09" * 16 + sid(77)],
             attributes={"gen_ai.request.model": "gpt-4o", "http.status_code": 200},
             resource_attributes={"service.name": "llm"}),
        span(tid, 3, 1, base + 60_000, base + 90_000, name="tool", service_name="tools",
             status_code=2, status_message="boom", resource_attributes={"service.name": "tools"}),
        span(tid, 4, 1, base + 95_000, base + 150_000, name="async job", kind=4),
    ]  # fmt: skip
    event = EventRow(
        event_id=tid[:8] + b"ev", time_ns=(base + 20_000) * 1000, observed_ns=None,
        severity="info", severity_number=9, subsystem="MOSAIC", event_type="retrying",
        agent_id="agent-1", fleet_id=None, task_run_id=None, trace_id=tid, span_id=sid(2),
        service_name="llm", message="retrying", payload={"attempt": 2}, resource_attributes={},
    )  # fmt: skip
    call = LlmCall(tid, sid(2), (base + 10_000) * 1000, "run-1", "agent-1", "MOSAIC",
                   "openai", "gpt-4o", 1000, 100, 0, 0, None)  # fmt: skip
    run = TaskRunSighting("run-1", "t-1", "agent-1", "failed", base * 1000,
                          (base + 100_000) * 1000, tid, True, span_id=sid(1))  # fmt: skip
    return Batch(uuid.UUID(int=0), spans=spans, events=[event], llm_calls=[call], task_runs=[run])


def for_org(batch: Batch, org: uuid.UUID) -> Batch:
    batch.org_id = org
    return batch


def test_trace_by_id_span_for_span_with_tree_path_and_totals(database: Database) -> None:
    org = new_org(database)
    tid = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    base = us(T0)
    ingest(database, for_org(task_trace(tid, base), org))
    with tenant(database, org) as conn:
        trace = core.get_trace(conn, tid)
    by_id = {s.span_id: s for s in trace.spans}
    assert set(by_id) == {sid(n) for n in (1, 2, 3, 4)}
    chat = by_id[sid(2)]
    assert (chat.start_us, chat.end_us) == (base + 10_000, base + 60_000)  # ns cut to µs
    assert chat.parent_span_id == sid(1)
    assert chat.kind == 3
    assert chat.service_name == "llm"
    assert chat.attributes == {"gen_ai.request.model": "gpt-4o", "http.status_code": 200}
    assert chat.links == (core.SpanLink(b"\x09" * 16, sid(77)),)
    assert [(e.name, e.attributes, e.time_us) for e in chat.events] == [
        ("retrying", {"attempt": 2}, base + 20_000)
    ]
    assert by_id[sid(3)].status_code == 2
    assert by_id[sid(3)].status_message == "boom"
    assert [(c.span_id, c.tokens_in, c.tokens_out) for c in trace.costs] == [(sid(2), 1000, 100)]
    assert trace.costs[0].cost_usd > 0
    assert not trace.pruned

    view = analyse(trace)
    assert view.order == (sid(1), sid(2), sid(3), sid(4))
    assert view.placements[sid(2)].depth == 1
    assert view.placements[sid(2)].offset_us == 10_000
    assert view.placements[sid(1)].self_us == 100_000 - 85_000
    path = [(s.span_id, s.start_us - base, s.end_us - base) for s in view.critical_path.segments]
    assert path == [(sid(1), 0, 10_000), (sid(2), 10_000, 60_000), (sid(3), 60_000, 90_000),
                    (sid(1), 90_000, 95_000), (sid(4), 95_000, 150_000)]  # fmt: skip
    t = view.totals
    assert (t.services, t.span_count, t.error_count, t.duration_us) == (
        ("llm", "planner", "tools"),
        4,
        1,
        150_000,
    )
    assert (t.llm_calls, t.input_tokens, t.output_tokens) == (1, 1000, 100)
    assert t.cost_usd == trace.costs[0].cost_usd


def test_another_orgs_trace_is_not_found_and_staff_sees_both(database: Database) -> None:
    a, b = new_org(database), new_org(database)
    ta, tb = b"\xaa" * 16, b"\xbb" * 16
    ingest(database, for_org(task_trace(ta, us(T0)), a), for_org(task_trace(tb, us(T0)), b))
    with tenant(database, a) as conn:
        with pytest.raises(NotFoundError):
            core.get_trace(conn, tb)
        with pytest.raises(NotFoundError):
            core.task_run(conn, "missing")
        found = core.search_traces(
            conn, core.TraceQuery(T0 - timedelta(minutes=5), T0 + timedelta(minutes=5))
        )
        assert [s.trace_id for s in found] == [ta]
        assert core.task_run(conn, "run-1").trace_id == ta
        deps = core.service_dependencies(conn, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [(d.parent, d.child, d.call_count, d.error_count) for d in deps] == [
        ("planner", "llm", 1, 0), ("planner", "tools", 1, 1)]  # fmt: skip
    with support(database) as conn:
        assert core.get_trace(conn, tb).summary.org_id == b
        assert len(core.get_trace(conn, tb).spans) == 4
        with pytest.raises(NotFoundError):
            core.get_trace(conn, tb, org_id=a)
        window = core.TraceQuery(T0 - timedelta(minutes=5), T0 + timedelta(minutes=5))
        assert {s.trace_id for s in core.search_traces(conn, window)} == {ta, tb}
        only_b = core.TraceQuery(window.start, window.end, org_id=b)
        assert [s.trace_id for s in core.search_traces(conn, only_b)] == [tb]
        deps = core.service_dependencies(conn, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
        assert sum(d.call_count for d in deps) == 4


def test_search_filters_order_and_keyset(database: Database) -> None:
    org, other = new_org(database), new_org(database)
    batches = []
    for i in range(6):
        tid = bytes([i + 1]) * 16
        batch = for_org(task_trace(tid, us(T0) + i * 1_000_000), org)
        if i % 2:  # odd traces: a retry attribute on the chat span and a slower tool
            batch.spans[1] = span(tid, 2, 1, us(T0) + i * 1_000_000 + 10_000,
                                  us(T0) + i * 1_000_000 + 70_000, name="chat gpt-4o",
                                  service_name="llm", attributes={"retry": True, "code": 429})  # fmt: skip
        batches.append(batch)
    batches.append(for_org(task_trace(b"\xee" * 16, us(T0)), other))
    ingest(database, *batches)
    lo, hi = T0 - timedelta(minutes=1), T0 + timedelta(minutes=1)

    def search(conn: Connection, **kw: object) -> list[int]:
        found = core.search_traces(conn, core.TraceQuery(lo, hi, **kw))  # type: ignore[arg-type]
        return [s.trace_id[0] for s in found]

    with tenant(database, org) as conn:
        assert search(conn) == [6, 5, 4, 3, 2, 1]  # newest first, never the other org's
        assert search(conn, limit=2) == [6, 5]
        first = core.search_traces(conn, core.TraceQuery(lo, hi, limit=2))
        after = (first[-1].start_us, first[-1].trace_id)
        assert search(conn, limit=3, before=after) == [4, 3, 2]
        svc_op = core.SpanFilter(service="llm", operation="chat gpt-4o")
        assert search(conn, spans=svc_op) == [6, 5, 4, 3, 2, 1]
        attrs = core.SpanFilter(service="llm", attributes=(("retry", "true"), ("code", "429")))
        assert search(conn, spans=attrs) == [6, 4, 2]
        assert search(conn, spans=core.SpanFilter(attributes=(("host.name", "h1"),))) == [
            6,
            5,
            4,
            3,
            2,
            1,
        ]
        slow = core.SpanFilter(service="llm", min_duration_us=55_000)
        assert search(conn, spans=slow) == [6, 4, 2]
        assert search(conn, spans=core.SpanFilter(attributes=(("error", "true"),))) == [
            6,
            5,
            4,
            3,
            2,
            1,
        ]
        kinds = core.SpanFilter(
            attributes=(("span.kind", "producer"), ("mosaic.task_run.id", "run-1"))
        )
        assert search(conn, spans=kinds) == []  # both on one span: the run id is on the root
        mapped = core.SpanFilter(attributes=(("mosaic.task_run.id", "run-1"),))
        assert search(conn, spans=mapped) == [6, 5, 4, 3, 2, 1]
        assert search(conn, status="error") == [6, 5, 4, 3, 2, 1]
        assert search(conn, status="ok") == []
        assert search(conn, min_duration_us=150_000, max_duration_us=150_000) == [6, 5, 4, 3, 2, 1]
        assert search(conn, min_duration_us=150_001) == []
        assert [o.name for o in core.list_operations(conn, "llm", T0 - timedelta(hours=2))] == [
            "chat gpt-4o"]  # fmt: skip
        assert core.list_services(conn, T0 - timedelta(hours=2)) == ["llm", "planner", "tools"]
        kinds_of = core.list_operations(conn, "planner", lo, kind=4)
        assert kinds_of == [core.Operation("async job", 4)]


def test_broad_searches_are_refused(database: Database) -> None:
    org = new_org(database)
    now = datetime.now(UTC)
    with tenant(database, org) as conn:
        with pytest.raises(core.QueryTooBroadError, match="name a service"):
            core.search_traces(conn, core.TraceQuery(now - timedelta(days=2), now))
        ops = core.SpanFilter(operation="x")
        with pytest.raises(core.QueryTooBroadError):
            core.search_traces(conn, core.TraceQuery(now - timedelta(hours=2), now, spans=ops))
        core.search_traces(conn, core.TraceQuery(now - timedelta(hours=1), now, spans=ops))
        narrow = core.SpanFilter(service="x", operation="x")
        core.search_traces(conn, core.TraceQuery(now - timedelta(days=30), now, spans=narrow))
        with pytest.raises(InvalidInputError, match=r"span\.kind"):
            bad = core.SpanFilter(service="x", attributes=(("span.kind", "sideways"),))
            core.search_traces(conn, core.TraceQuery(now - timedelta(hours=1), now, spans=bad))


def test_pruned_trace_answers_with_its_summary(database: Database) -> None:
    org = new_org(database, "0")
    tid = b"\x5a" * 16
    base = us(T0) - 30 * 3_600_000_000  # ended well before the 24 h window
    batch = for_org(task_trace(tid, base), org)
    batch.spans = [replace_status(s) for s in batch.spans]
    ingest(database, batch)
    report = sweep_traces(database.app_engine(), datetime.now(UTC), window=timedelta(hours=24))
    assert report.traces_pruned == 1
    with tenant(database, org) as conn:
        trace = core.get_trace(conn, tid)
    assert trace.pruned
    assert trace.spans == ()
    assert not trace.summary.spans_kept
    assert trace.summary.span_count == 4
    assert len(trace.costs) == 1
    totals = analyse(trace).totals
    assert totals.span_count == 4
    assert totals.llm_calls == 1
    assert totals.duration_us == 150_000


def replace_status(s: SpanRow) -> SpanRow:
    from dataclasses import replace

    return replace(s, status_code=0, status_message=None)


def test_partial_trace_marks_orphans(database: Database) -> None:
    org = new_org(database)
    tid = b"\x77" * 16
    base = us(T0)
    spans = [span(tid, 5, 99, base, base + 10), span(tid, 6, 5, base + 2, base + 8)]
    ingest(database, Batch(org, spans=spans))
    with tenant(database, org) as conn:
        trace = core.get_trace(conn, tid)
    view = analyse(trace)
    assert view.orphan_count == 1
    assert view.placements[sid(5)].orphan
    assert not view.placements[sid(6)].orphan
    assert view.placements[sid(6)].depth == 1
    with database.admin_engine().connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM spans WHERE trace_id = :t"), {"t": tid})
        assert count.scalar_one() == 2


def test_cost_is_exact_decimal(database: Database) -> None:
    org = new_org(database)
    tid = b"\x31" * 16
    ingest(database, for_org(task_trace(tid, us(T0)), org))
    with tenant(database, org) as conn:
        cost = core.get_trace(conn, tid).costs[0].cost_usd
    assert isinstance(cost, Decimal)
    assert cost == Decimal("1000") * Decimal("2.5") / 10**6 + Decimal("100") * Decimal("10") / 10**6


def test_windowed_span_search_orders_by_trace_start(database: Database) -> None:
    """Span searches read newest windows first; a long trace whose matching span is
    recent must not outrank traces that started after it, nor push them out."""
    org = new_org(database)
    t0 = us(datetime.now(UTC)) - 60_000_000
    minute = 60_000_000
    batches, starts = [], {}
    for i in range(12):
        tid = bytes([i + 1]) * 16
        start = t0 - i * 50 * minute
        starts[tid] = start
        spans = [span(tid, 1, None, start, start + 2_000_000),
                 span(tid, 2, 1, start + 1_000_000, start + 1_500_000, service_name="llm")]  # fmt: skip
        batches.append(Batch(org, spans=spans))
    long_id, long_start = b"\xaa" * 16, t0 - 540 * minute
    starts[long_id] = long_start
    batches.append(Batch(org, spans=[
        span(long_id, 1, None, long_start, t0),
        span(long_id, 2, 1, t0 - minute, t0 - minute + 10, service_name="llm")]))  # fmt: skip
    ingest(database, *batches)
    expected = sorted(starts, key=lambda t: (starts[t], t), reverse=True)
    rng = (datetime.now(UTC) - timedelta(hours=12), datetime.now(UTC))
    with tenant(database, org) as conn:
        for limit in (1, 2, 3, 5, 11, 12, 13, 20):
            q = core.TraceQuery(*rng, spans=core.SpanFilter(service="llm"), limit=limit)
            assert [s.trace_id for s in core.search_traces(conn, q)] == expected[:limit], limit

"""The group-commit ingest writer against a real database (conformance: both engines)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.errors import DatabaseUnavailableError
from storage.ingest.rows import (
    AgentSighting,
    Batch,
    EventRow,
    LlmCall,
    MetricPointRow,
    SpanRow,
    TaskRunSighting,
)
from storage.ingest.writer import CommitStats, IngestWriter, QueueFullError

T0 = 1_795_000_000_000_000_000  # 2026-11-18, in Unix nanoseconds
MS = 1_000_000


def span(
    trace: int, n: int, *, parent: int | None = None, error: bool = False, run: str | None = None
) -> SpanRow:
    return SpanRow(
        trace_id=trace.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else None, trace_state=None,
        name=f"op-{n}", kind=1, start_ns=T0 + n * MS, end_ns=T0 + n * MS + 5 * MS,
        status_code=2 if error else 0, status_message=None, subsystem="MOSAIC",
        service_name="planner", agent_id="agent-1", fleet_id="fleet-1", task_run_id=run,
        gen_ai_operation=None, gen_ai_provider=None, gen_ai_model=None, input_tokens=None,
        output_tokens=None, scope_name="test", attributes={"k": n, "nested": {"a": [1, "x"]}},
        resource_attributes={"service.name": "planner"},
    )  # fmt: skip


def event(n: int) -> EventRow:
    return EventRow(
        event_id=n.to_bytes(16, "big"), time_ns=T0 + n, observed_ns=None, severity="warn",
        severity_number=13, subsystem="DAMN", event_type="damn.agent.heartbeat", agent_id="agent-1",
        fleet_id=None, task_run_id=None, trace_id=None, span_id=None, service_name="planner",
        message=f"hello {n}", payload={"n": n}, resource_attributes={},
    )  # fmt: skip


def point(n: int) -> MetricPointRow:
    return MetricPointRow(
        metric="damn.queue.depth", series_id=b"s" * 16, time_ns=T0 + n * 1000 * MS, start_ns=None,
        kind="histogram", temporality=2, is_monotonic=False, unit="{task}", subsystem="DAMN",
        service_name=None, agent_id="agent-1", attributes={"queue": "main"}, resource_attributes={},
        count=3, sum=6.0, explicit_bounds=[1.0, 5.0], bucket_counts=[1, 1, 1],
    )  # fmt: skip


@pytest.fixture
def org(database: Database) -> uuid.UUID:
    with scoped_transaction(database.admin_engine(), Scope(DbRole.STAFF)) as conn:
        return admin.create_org(conn, f"org-{uuid.uuid4().hex[:6]}", "pro").org_id


@pytest.fixture
def commits() -> list[CommitStats]:
    return []


@pytest.fixture
def writer(database: Database, commits: list[CommitStats]) -> IngestWriter:
    return IngestWriter(database.app_conninfo(), on_commit=commits.append, flushers=1)


def run(coro: Coroutine[Any, Any, list[Any]]) -> list[Any]:
    return asyncio.run(coro)


async def _write_all(writer: IngestWriter, batches: list[Batch]) -> list[Any]:
    await writer.start()
    try:
        return list(
            await asyncio.gather(*(writer.write(b) for b in batches), return_exceptions=True)
        )
    finally:
        await writer.close()


def _scalar(db: Database, query: str) -> object:
    with db.admin_engine().connect() as conn:
        return conn.execute(text(query)).scalar()


def full_batch(org_id: uuid.UUID) -> Batch:
    root = span(1, 1, run="run-1")
    child = span(1, 2, parent=1, error=True, run="run-1")
    llm = replace(
        span(1, 3, parent=1, run="run-1"), gen_ai_provider="openai", gen_ai_model="gpt-4o"
    )
    return Batch(
        org_id,
        spans=[root, child, llm],
        events=[event(1), event(2)],
        metric_points=[point(1), point(2)],
        llm_calls=[
            LlmCall(
                llm.trace_id,
                llm.span_id,
                llm.start_ns,
                "run-1",
                "agent-1",
                "MOSAIC",
                "openai",
                "gpt-4o-2024-08-06",
                1_000_000,
                100_000,
                200_000,
                0,
                None,
            ),
        ],
        agents=[
            AgentSighting("agent-1", "fleet-1", "Planner", "MOSAIC", "planner", "1.2.0", T0, {}),
        ],
        task_runs=[
            TaskRunSighting(
                "run-1",
                "task-1",
                "agent-1",
                "succeeded",
                root.start_ns,
                root.end_ns,
                root.trace_id,
                True,
                "Plan a trip",
                root.span_id,
            ),
            TaskRunSighting(
                "run-1",
                "task-1",
                "agent-1",
                None,
                child.start_ns,
                child.end_ns,
                child.trace_id,
                False,
                None,
                child.span_id,
            ),
        ],
    )


def test_a_batch_lands_with_everything_derived(
    database: Database, writer: IngestWriter, org: uuid.UUID
) -> None:
    [result] = run(_write_all(writer, [full_batch(org)]))
    assert (result.spans, result.events, result.metric_points, result.duplicates) == (3, 2, 2, 0)
    assert _scalar(database, "SELECT span_count || '/' || error_count FROM traces") == "3/1"
    assert _scalar(database, "SELECT root_span_name FROM traces") == "op-1"
    assert (
        _scalar(database, "SELECT status FROM task_runs WHERE task_run_id = 'run-1'") == "succeeded"
    )
    assert _scalar(database, "SELECT duration_ms FROM task_runs") == pytest.approx(5.0)
    # gpt-4o: 800k uncached input at $2.50/M + 200k cache reads at $1.25/M + 100k output at $10/M
    expected = Decimal("2.0") + Decimal("0.25") + Decimal("1.0")
    assert _scalar(database, "SELECT cost_usd FROM cost_line_items") == expected
    assert _scalar(database, "SELECT cost_source FROM cost_line_items") == "priced"
    assert _scalar(database, "SELECT cost_usd FROM task_runs") == expected
    assert _scalar(database, "SELECT version || ' ' || fleet_id FROM agents") == "1.2.0 fleet-1"
    assert _scalar(database, "SELECT title FROM tasks") == "Plan a trip"
    assert (
        _scalar(database, "SELECT attributes->'nested'->'a'->>1 FROM spans WHERE name = 'op-1'")
        == "x"
    )
    assert _scalar(database, "SELECT bucket_counts::text FROM metric_points LIMIT 1") == "{1,1,1}"


def test_derived_times_are_exact_at_both_ends_of_the_accepted_range(
    database: Database, writer: IngestWriter, org: uuid.UUID
) -> None:
    # 1 ms after the epoch (plus 999 ns, truncated as the spans' own times are) and the
    # last accepted nanosecond (2262): past 2^53 microseconds, where a float would round.
    start, end = 1_000_999, 2**63 - 1
    batch = full_batch(org)
    batch.spans = [replace(s, start_ns=start, end_ns=end) for s in batch.spans]
    batch.task_runs = [replace(r, start_ns=start, end_ns=end) for r in batch.task_runs]
    batch.llm_calls = [replace(c, time_ns=end) for c in batch.llm_calls]
    batch.agents = [replace(a, seen_ns=end, heartbeat_ns=start) for a in batch.agents]
    run(_write_all(writer, [batch]))
    us = "(extract(epoch FROM {}) * 1000000)::bigint"
    for table, column, expected in (
        ("traces", "start_time", start // 1000), ("traces", "end_time", end // 1000),
        ("task_runs", "started_at", start // 1000), ("task_runs", "ended_at", end // 1000),
        ("cost_line_items", "time", end // 1000), ("agents", "last_seen_at", end // 1000),
        ("agents", "last_heartbeat_at", start // 1000), ("fleets", "last_seen_at", end // 1000),
        ("spans", "min(start_time)", start // 1000), ("spans", "max(end_time)", end // 1000),
    ):  # fmt: skip
        assert _scalar(database, f"SELECT {us.format(column)} FROM {table}") == expected, column


def test_a_retried_export_is_stored_once(
    database: Database, commits: list[CommitStats], org: uuid.UUID
) -> None:
    first = IngestWriter(database.app_conninfo(), flushers=1)
    run(_write_all(first, [full_batch(org)]))
    again = IngestWriter(database.app_conninfo(), on_commit=commits.append, flushers=1)
    partly_new = full_batch(org)
    partly_new.spans.append(span(1, 9, parent=1, run="run-1"))
    [dup, mixed] = run(_write_all(again, [full_batch(org), partly_new]))
    assert commits[0].slow_path
    assert (dup.spans, dup.events, dup.metric_points, dup.duplicates) == (0, 0, 0, 7)
    assert mixed.spans == 1
    assert _scalar(database, "SELECT count(*) FROM spans") == 4
    assert _scalar(database, "SELECT span_count FROM traces") == 4
    assert _scalar(database, "SELECT count(*) FROM cost_line_items") == 1
    assert _scalar(database, "SELECT cost_usd FROM task_runs") == Decimal("3.25")


def test_concurrent_requests_share_commits(
    writer: IngestWriter, commits: list[CommitStats], org: uuid.UUID, database: Database
) -> None:
    batches = [Batch(org, spans=[span(100 + i, j + 1) for j in range(20)]) for i in range(50)]
    results = run(_write_all(writer, batches))
    assert all(r.spans == 20 for r in results)
    assert _scalar(database, "SELECT count(*) FROM spans") == 1000
    assert _scalar(database, "SELECT count(*) FROM traces") == 50
    assert sum(c.batches for c in commits) == 50
    assert len(commits) < 50  # merged: fewer transactions than requests


def test_a_full_queue_refuses_at_once_and_loses_nothing(database: Database, org: uuid.UUID) -> None:
    writer = IngestWriter(database.app_conninfo(), max_pending_items=100, flushers=1)
    batches = [Batch(org, spans=[span(200 + i, j + 1) for j in range(60)]) for i in range(4)]
    results = run(_write_all(writer, batches))
    refused = [r for r in results if isinstance(r, QueueFullError)]
    stored = [r for r in results if not isinstance(r, BaseException)]
    assert refused
    assert stored
    assert _scalar(database, "SELECT count(*) FROM spans") == 60 * len(stored)


def test_unreachable_database_is_retryable(org: uuid.UUID) -> None:
    writer = IngestWriter("postgresql://aeos_app@127.0.0.1:1/nowhere", flushers=1)
    [result] = run(_write_all(writer, [Batch(org, spans=[span(1, 1)])]))
    assert isinstance(result, DatabaseUnavailableError)


def test_a_refused_batch_fails_alone(database: Database, org: uuid.UUID) -> None:
    bad = Batch(org, events=[replace(event(5), severity="loud")])  # violates the CHECK
    good = Batch(org, spans=[span(300, 1)])
    writer = IngestWriter(database.app_conninfo(), flushers=1)
    results = run(_write_all(writer, [good, bad]))
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], Exception)
    assert "refused" in str(results[1])
    assert _scalar(database, "SELECT count(*) FROM spans") == 1
    assert writer.pending_items == 0  # every item settled exactly once

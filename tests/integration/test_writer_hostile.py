"""The ingest writer under hostile rows: one request's rows never fail or stall another's.

Regression tests of issue 9, findings 1 and 2: an exception that is not a driver error
(a value the driver cannot encode) used to kill a flusher task and leave every request
of its group unanswered; a row over the btree entry limit was read as "database down"
and failed the whole group with a retryable error.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from storage import admin
from storage.database import Database
from storage.errors import RefusedDataError, RetryableStorageError
from storage.ingest.rows import AgentSighting, Batch, TaskRunSighting
from storage.ingest.writer import CommitStats, IngestWriter, QueueFullError, WriteResult
from tests.integration.test_writer import event, point, span


def _org(database: Database) -> uuid.UUID:
    with database.admin_engine().begin() as conn:
        return admin.create_org(conn, f"org-{uuid.uuid4().hex[:6]}", "pro").org_id


def _count(database: Database, sql: str, **params: Any) -> int:
    with database.admin_engine().connect() as conn:
        return int(conn.execute(text(sql), params).scalar() or 0)


async def _together(writer: IngestWriter, *batches: Batch) -> list[Any]:
    """Writes the batches at the same moment (one group commit), then one more batch."""
    return list(await asyncio.gather(*(writer.write(b) for b in batches), return_exceptions=True))


def _run_with(writer: IngestWriter, body: Any) -> Any:
    async def main() -> Any:
        await writer.start()
        try:
            return await body()
        finally:
            await writer.close()

    return asyncio.run(main())


def test_a_value_the_driver_cannot_encode_fails_only_its_request(database: Database) -> None:
    attacker, victim = _org(database), _org(database)
    poison = Batch(attacker, spans=[replace(span(1, 1), input_tokens=2**64)])
    normal = Batch(victim, spans=[span(2, 1), span(2, 2)])
    writer = IngestWriter(database.app_conninfo(), flushers=1)

    async def body() -> tuple[list[Any], WriteResult, bool]:
        results = await _together(writer, poison, normal)
        after = await writer.write(Batch(victim, spans=[span(3, 1)]))
        return results, after, writer.health().ready

    (bad, good), after, ready = _run_with(writer, body)
    assert isinstance(bad, RefusedDataError)
    assert "cannot be stored" in str(bad)
    assert isinstance(good, WriteResult)
    assert good.spans == 2
    assert after.spans == 1
    assert ready
    assert writer.restarts == 0
    assert _count(database, "SELECT count(*) FROM spans WHERE org_id = :o", o=victim) == 3
    assert _count(database, "SELECT count(*) FROM spans WHERE org_id = :o", o=attacker) == 0


def test_an_index_row_over_the_btree_limit_is_refused_not_unavailable(database: Database) -> None:
    attacker, victim = _org(database), _org(database)
    huge = secrets.token_hex(3000)  # 6,000 incompressible characters in an indexed column
    poison = Batch(attacker, events=[replace(event(1), agent_id=huge)])
    normal = Batch(victim, events=[event(2)])
    writer = IngestWriter(database.app_conninfo(), flushers=1)
    bad, good = _run_with(writer, lambda: _together(writer, poison, normal))
    assert isinstance(bad, RefusedDataError), bad
    assert not isinstance(bad, RetryableStorageError)
    assert "index row" in str(bad)
    assert isinstance(good, WriteResult)
    assert good.events == 1
    assert writer.health().ready


@pytest.mark.parametrize("kind", ["task run status", "agent id over the index limit"])
def test_a_derived_row_the_database_refuses_fails_only_its_request(
    database: Database, kind: str
) -> None:
    """Derived rows are merged in the commit's pipeline: a refusal there is isolated too."""
    attacker, victim = _org(database), _org(database)
    if kind == "task run status":  # violates ck_task_runs_status
        sighting = TaskRunSighting("run-x", None, None, "exploded", 1, 2, b"t" * 16, True,
                                   None, b"s" * 8)  # fmt: skip
        poison = Batch(attacker, spans=[span(1, 1, run="run-x")], task_runs=[sighting])
    else:  # 6,000 incompressible characters in the agents primary key
        poison = Batch(attacker, spans=[span(1, 1)], agents=[AgentSighting(
            secrets.token_hex(3000), None, "x", "DAMN", None, None, 1, {})])  # fmt: skip
    normal = Batch(victim, spans=[span(2, 1), span(2, 2, parent=1, run="run-v")],
                   task_runs=[TaskRunSighting("run-v", None, None, "succeeded", 1, 2,
                                              b"v" * 16, True, None, b"s" * 8)])  # fmt: skip
    writer = IngestWriter(database.app_conninfo(), flushers=1)
    bad, good = _run_with(writer, lambda: _together(writer, poison, normal))
    assert isinstance(bad, RefusedDataError), bad
    assert ("ck_task_runs_status" if kind == "task run status" else "index row") in str(bad)
    assert isinstance(good, WriteResult)
    assert good.spans == 2
    assert writer.health().ready
    assert _count(database, "SELECT count(*) FROM spans WHERE org_id = :o", o=attacker) == 0
    assert _count(database, "SELECT count(*) FROM task_runs WHERE org_id = :o", o=victim) == 1
    assert _count(database, "SELECT count(*) FROM traces WHERE org_id = :o", o=victim) == 1


def test_saturated_rollup_counts_do_not_fail_the_commit(database: Database) -> None:
    org = _org(database)
    top = 2**63 - 1
    one = replace(point(1), count=top, bucket_counts=[top, 0, 0])
    two = replace(point(2), count=top, bucket_counts=[top, 0, 0])  # same series and minute
    writer = IngestWriter(database.app_conninfo(), flushers=1)
    [result] = _run_with(writer, lambda: _together(writer, Batch(org, metric_points=[one, two])))
    assert isinstance(result, WriteResult)
    assert result.metric_points == 2
    if _count(database, "SELECT count(*) FROM aeos_meta WHERE value = 'postgres'"):
        observations = _count(database, "SELECT max(observations) FROM metric_rollup_1d")
        assert observations == top  # saturated, not wrapped or failed


def test_a_flusher_that_dies_is_replaced_and_its_requests_answered(database: Database) -> None:
    org = _org(database)
    writer = IngestWriter(database.app_conninfo(), flushers=1)
    lock = psycopg.connect(database.admin_url.render_as_string(hide_password=False).replace(
        "postgresql+psycopg", "postgresql"), autocommit=False)  # fmt: skip

    async def body() -> tuple[Any, WriteResult]:
        lock.execute("LOCK TABLE spans IN ACCESS EXCLUSIVE MODE")  # the commit will wait
        held = asyncio.ensure_future(writer.write(Batch(org, spans=[span(5, 1)])))
        while not writer._held:  # the flusher has taken the batch
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # and waits for the lock
        writer._tasks[0].cancel()  # what any escaped BaseException would do
        first = await asyncio.gather(held, return_exceptions=True)
        lock.rollback()
        return first[0], await writer.write(Batch(org, spans=[span(5, 2)]))

    try:
        first, second = _run_with(writer, body)
    finally:
        lock.close()
    assert isinstance(first, RetryableStorageError)
    assert "restarted" in str(first)
    assert second.spans == 1
    assert writer.restarts == 1


def test_a_stalled_writer_reports_not_ready(database: Database) -> None:
    org = _org(database)
    writer = IngestWriter(database.app_conninfo(), flushers=1, stall_seconds=0.3)
    lock = psycopg.connect(database.admin_url.render_as_string(hide_password=False).replace(
        "postgresql+psycopg", "postgresql"), autocommit=False)  # fmt: skip

    async def body() -> tuple[bool, str, bool, WriteResult]:
        lock.execute("LOCK TABLE spans IN ACCESS EXCLUSIVE MODE")
        first = asyncio.ensure_future(writer.write(Batch(org, spans=[span(6, 1)])))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(writer.write(Batch(org, spans=[span(6, 2)])))
        await asyncio.sleep(1.0)
        health = writer.health()
        lock.rollback()
        await asyncio.gather(first, second)
        return health.ready, health.reason, writer.health().ready, await second

    try:
        stalled, reason, ready_after, result = _run_with(writer, body)
    finally:
        lock.close()
    assert not stalled
    assert "no commit" in reason
    assert ready_after
    assert result.spans == 1


def test_one_org_cannot_take_the_whole_queue(database: Database) -> None:
    heavy, light = _org(database), _org(database)
    writer = IngestWriter(
        database.app_conninfo(), flushers=1, max_pending_items=100, max_pending_org_items=50
    )
    heavy_batches = [Batch(heavy, spans=[span(100 + i, n) for n in range(1, 21)]) for i in range(5)]
    light_batch = Batch(light, spans=[span(300, n) for n in range(1, 21)])
    results = _run_with(writer, lambda: _together(writer, *heavy_batches, light_batch))
    refused = [r for r in results[:-1] if isinstance(r, QueueFullError)]
    assert len(refused) == 3
    assert "per org" in str(refused[0])
    assert isinstance(results[-1], WriteResult)
    assert results[-1].spans == 20


def test_a_light_org_is_committed_without_the_heavy_orgs_queued_batches(
    database: Database,
) -> None:
    heavy, light = _org(database), _org(database)
    commits: list[CommitStats] = []
    writer = IngestWriter(database.app_conninfo(), flushers=2, on_commit=commits.append)
    heavy_batches = [Batch(heavy, spans=[span(500 + i, n) for n in range(1, 21)]) for i in range(6)]
    light_batch = Batch(light, spans=[span(600, 1)])
    results = _run_with(writer, lambda: _together(writer, *heavy_batches, light_batch))
    assert [r.spans for r in results] == [20] * 6 + [1]
    # An express group: the light org's batch alone, not first in a group of 121 items.
    assert (1, 1) in {(c.batches, c.items) for c in commits}
    assert sum(c.items for c in commits) == 121
    assert _count(database, "SELECT count(*) FROM spans WHERE org_id = :o", o=light) == 1


def test_a_single_request_over_the_queue_bound_is_refused(database: Database) -> None:
    org = _org(database)
    writer = IngestWriter(database.app_conninfo(), flushers=1, max_pending_items=100)
    big = Batch(org, spans=[span(400, n) for n in range(1, 102)])
    [result] = _run_with(writer, lambda: _together(writer, big))  # the queue is empty
    assert isinstance(result, QueueFullError)


@pytest.fixture(autouse=True)
def _quiet_writer_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="storage.ingest.writer")

"""The ingest writer: group commit of concurrent export requests, acknowledged when durable.

Contract of :meth:`IngestWriter.write`:
- returns only after the batch's rows are committed (durable before return);
- idempotent: writing the same batch again stores nothing new and counts nothing twice
  (raw rows are de-duplicated on their primary keys; aggregates are derived from the
  rows actually inserted);
- concurrent calls are merged: one transaction, one binary COPY per table, for every
  batch waiting when a commit starts (group commit), so durability costs one fsync per
  group rather than per request;
- bounded: when the items waiting would exceed ``max_pending_items`` it raises
  :class:`QueueFullError` at once (retryable: "come back later"); nothing is dropped;
- database unreachable: :class:`DatabaseUnavailableError` (retryable); a batch the
  database refuses for its content: :class:`PermanentStorageError`, and only that batch
  fails — the others of its group are committed without it.
The caller owns nothing after the call; the writer keeps no reference to the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, errors

from storage.errors import DatabaseUnavailableError, PermanentStorageError, RetryableStorageError
from storage.ingest import _derive, rollups
from storage.ingest import _sql as q
from storage.ingest.pricing import Price, PriceBook
from storage.ingest.rows import Batch
from storage.migrate import STORAGE_ENGINE, StorageEngine, engine_of

_log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING_ITEMS = 200_000
DEFAULT_MAX_COMMIT_ITEMS = 50_000
PRICE_REFRESH_S = 60.0
_RETRY_CODES = (errors.DeadlockDetected, errors.SerializationFailure)
_MAX_ATTEMPTS = 3


class QueueFullError(RetryableStorageError):
    """Too much is waiting to be written; the request should be retried later."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch added: new rows per signal, and items that were already stored."""

    spans: int
    events: int
    metric_points: int
    duplicates: int
    cost_items: int


@dataclass(frozen=True, slots=True)
class CommitStats:
    """One group commit, for self-telemetry."""

    batches: int
    items: int
    seconds: float
    slow_path: bool


@dataclass
class _Pending:
    batch: Batch
    future: asyncio.Future[WriteResult]


class IngestWriter:
    """Group-commit writer on its own connection(s), acting as ``aeos_ingest``."""

    def __init__(
        self,
        conninfo: str,
        *,
        max_pending_items: int = DEFAULT_MAX_PENDING_ITEMS,
        max_commit_items: int = DEFAULT_MAX_COMMIT_ITEMS,
        flushers: int = 2,
        on_commit: Callable[[CommitStats], None] | None = None,
        maintain_rollups: bool = True,
    ) -> None:
        self._conninfo = conninfo
        self._max_pending = max_pending_items
        self._max_commit = max_commit_items
        self._flusher_count = flushers
        self._on_commit = on_commit
        self._queue: deque[_Pending] = deque()
        self._pending_items = 0
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._prices: PriceBook | None = None
        self._prices_at = 0.0
        # Rollup tables are maintained here on the PostgreSQL engine only (TimescaleDB
        # computes them as continuous aggregates); decided when the first connection opens.
        self._maintain_rollups = maintain_rollups
        self._rollups: bool | None = None

    @property
    def pending_items(self) -> int:
        """Items accepted but not yet committed (the queue depth)."""
        return self._pending_items

    async def start(self) -> None:
        """Starts the flushers; connections are opened on first use."""
        self._tasks = [asyncio.create_task(self._flush_loop()) for _ in range(self._flusher_count)]

    async def close(self) -> None:
        """Commits what is pending, then stops."""
        self._closing = True
        self._wakeup.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def write(self, batch: Batch) -> WriteResult:
        """Stores ``batch`` durably (see the module docstring for the contract)."""
        items = max(batch.item_count, 1)
        if self._closing:
            raise RetryableStorageError("the writer is shutting down")
        if self._pending_items and self._pending_items + items > self._max_pending:
            raise QueueFullError(f"{self._pending_items} items are waiting to be written")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(batch, future))
        self._pending_items += items
        self._wakeup.set()
        return await future

    def _take(self) -> list[_Pending]:
        group: list[_Pending] = []
        items = 0
        while self._queue and (
            not group or items + self._queue[0].batch.item_count <= self._max_commit
        ):
            pending = self._queue.popleft()
            group.append(pending)
            items += pending.batch.item_count
        if not self._queue:
            self._wakeup.clear()
        return group

    async def _flush_loop(self) -> None:
        conn: AsyncConnection[Any] | None = None
        try:
            while True:
                await self._wakeup.wait()
                group = self._take()
                if not group:
                    if self._closing:
                        return
                    continue
                conn = await self._commit_group(conn, group)
        finally:
            if conn is not None:
                await conn.close()

    async def _commit_group(
        self, conn: AsyncConnection[Any] | None, group: list[_Pending]
    ) -> AsyncConnection[Any] | None:
        split = False
        try:
            if conn is None or conn.closed:
                conn = await self._connect()
            results = await self._commit_with_retries(conn, [p.batch for p in group])
        except psycopg.OperationalError as exc:
            _log.warning("database unavailable: %s", exc)
            self._fail(group, DatabaseUnavailableError(f"database unavailable: {exc}"))
            if conn is not None:
                await _closed(conn)
            return None
        except psycopg.Error as exc:
            if len(group) > 1:  # find the batch the database refuses; commit the others
                split = True  # each single-batch call below settles its own items
                for pending in group:
                    conn = await self._commit_group(conn, [pending])
                return conn
            self._fail(group, PermanentStorageError(f"the database refused the data: {exc}"))
            return conn
        finally:
            if not split:
                self._pending_items -= sum(max(p.batch.item_count, 1) for p in group)
        for pending, result in zip(group, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
        return conn

    @staticmethod
    def _fail(group: list[_Pending], error: Exception) -> None:
        for pending in group:
            if not pending.future.done():
                pending.future.set_exception(error)

    async def _connect(self) -> AsyncConnection[Any]:
        conn = await AsyncConnection.connect(self._conninfo, autocommit=True, connect_timeout=5)
        await conn.execute(q.SET_INGEST_ROLE)
        q.configure(conn)
        await q.create_temp_tables(conn)
        if self._rollups is None:
            cur = await conn.execute(STORAGE_ENGINE)
            row = await cur.fetchone()
            engine = engine_of(row[0]) if row is not None else None
            self._rollups = self._maintain_rollups and engine is StorageEngine.POSTGRES
        if self._rollups:
            await rollups.create_temp_tables(conn)
        return conn

    async def _price_book(self, conn: AsyncConnection[Any]) -> PriceBook:
        if self._prices is None or time.monotonic() - self._prices_at > PRICE_REFRESH_S:
            self._prices = await _load_prices(conn)
            self._prices_at = time.monotonic()
        return self._prices

    async def _commit_with_retries(
        self, conn: AsyncConnection[Any], batches: list[Batch]
    ) -> list[WriteResult]:
        started = time.perf_counter()
        slow = False
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                results = await self._commit(conn, batches, slow)
                break
            except errors.UniqueViolation:
                slow = True  # a retried export: redo through ON CONFLICT DO NOTHING
            except _RETRY_CODES:
                if attempt == _MAX_ATTEMPTS:
                    raise
        else:
            results = await self._commit(conn, batches, True)
        if self._on_commit is not None:
            items = sum(b.item_count for b in batches)
            self._on_commit(CommitStats(len(batches), items, time.perf_counter() - started, slow))
        return results

    async def _commit(
        self, conn: AsyncConnection[Any], batches: list[Batch], slow: bool
    ) -> list[WriteResult]:
        book = await self._price_book(conn)
        async with conn.transaction():
            new = await _insert_raw(conn, batches, slow)
            cost_items = await _write_derived(conn, batches, new, book, slow, bool(self._rollups))
        return [
            WriteResult(
                spans=len(new.spans[i]),
                events=len(new.events[i]),
                metric_points=len(new.metrics[i]),
                duplicates=b.item_count
                - len(new.spans[i])
                - len(new.events[i])
                - len(new.metrics[i]),
                cost_items=cost_items[i],
            )
            for i, b in enumerate(batches)
        ]


@dataclass
class _NewRows:
    spans: list[list[int]]  # per batch: indexes of new spans
    events: list[list[int]]  # per batch: indexes of new events
    metrics: list[list[int]]  # per batch: indexes of new points


async def _insert_raw(conn: AsyncConnection[Any], batches: list[Batch], slow: bool) -> _NewRows:
    spans = [(b.org_id, s) for b in batches for s in b.spans]
    events = [(b.org_id, e) for b in batches for e in b.events]
    points = [(b.org_id, m) for b in batches for m in b.metric_points]
    if not slow:
        if spans:
            await q.copy_rows(conn, "spans", q.SPAN_COLUMNS, (q.span_tuple(o, s) for o, s in spans))
        if events:
            await q.copy_rows(
                conn, "events", q.EVENT_COLUMNS, (q.event_tuple(o, e) for o, e in events)
            )
        if points:
            await q.copy_rows(
                conn, "metric_points", q.METRIC_COLUMNS, (q.metric_tuple(o, m) for o, m in points)
            )
        return _NewRows(
            [list(range(len(b.spans))) for b in batches],
            [list(range(len(b.events))) for b in batches],
            [list(range(len(b.metric_points))) for b in batches],
        )
    return await _insert_raw_slow(conn, batches, spans, events, points)


async def _insert_raw_slow(
    conn: AsyncConnection[Any],
    batches: list[Batch],
    spans: list[Any],
    events: list[Any],
    points: list[Any],
) -> _NewRows:
    new_spans = await q.insert_new(
        conn, "spans", q.SPAN_COLUMNS, [q.span_tuple(o, s) for o, s in spans],
        ("org_id", "trace_id", "span_id", "start_time"),
    ) if spans else set()  # fmt: skip
    new_events = await q.insert_new(
        conn, "events", q.EVENT_COLUMNS, [q.event_tuple(o, e) for o, e in events],
        ("org_id", "event_id", "time"),
    ) if events else set()  # fmt: skip
    new_points = await q.insert_new(
        conn, "metric_points", q.METRIC_COLUMNS, [q.metric_tuple(o, m) for o, m in points],
        ("org_id", "metric", "series_id", "time"),
    ) if points else set()  # fmt: skip
    # A key inserted once may appear in several batches of the group (an export and its
    # retry committed together) or twice in one: only its first occurrence is new.
    return _NewRows(
        _claim(new_spans, batches, lambda b: b.spans,
               lambda o, s: (o, s.trace_id, s.span_id, s.start_ns // 1000)),
        _claim(new_events, batches, lambda b: b.events,
               lambda o, e: (o, e.event_id, e.time_ns // 1000)),
        _claim(new_points, batches, lambda b: b.metric_points,
               lambda o, m: (o, m.metric, m.series_id, m.time_ns // 1000)),
    )  # fmt: skip


def _claim(
    inserted: set[tuple[Any, ...]],
    batches: list[Batch],
    rows: Callable[[Batch], list[Any]],
    key: Callable[[Any, Any], tuple[Any, ...]],
) -> list[list[int]]:
    """Per batch, the indexes of rows that are the first occurrence of an inserted key."""
    unclaimed = set(inserted)
    out: list[list[int]] = []
    for b in batches:
        mine = []
        for i, row in enumerate(rows(b)):
            k = key(b.org_id, row)
            if k in unclaimed:
                unclaimed.discard(k)
                mine.append(i)
        out.append(mine)
    return out


async def _write_derived(
    conn: AsyncConnection[Any],
    batches: list[Batch],
    new: _NewRows,
    book: PriceBook,
    slow: bool,
    with_rollups: bool,
) -> list[int]:
    """Trace summaries, task runs, agents, costs and rollups from the new rows.

    Returns:
        The number of new cost items per batch.
    """
    new_spans = [
        (b.org_id, b.spans[i]) for b, idx in zip(batches, new.spans, strict=True) for i in idx
    ]
    new_ids = {(o, s.trace_id, s.span_id) for o, s in new_spans}
    await q.upsert_traces(conn, _derive.trace_summaries(new_spans))
    runs = [
        (b.org_id, r)
        for b in batches
        for r in b.task_runs
        if not slow or (b.org_id, r.trace_id, r.span_id) in new_ids
    ]
    await q.upsert_task_runs(conn, _derive.task_run_updates(runs))
    await q.upsert_agents(
        conn, _derive.latest_agents((b.org_id, a) for b in batches for a in b.agents)
    )
    calls = []
    for b, idx in zip(batches, new.spans, strict=True):  # each new span's call once
        mine = {(b.spans[i].trace_id, b.spans[i].span_id) for i in idx}
        calls.append([(b.org_id, c) for c in b.llm_calls if (c.trace_id, c.span_id) in mine])
    # A cost item shares its span's key: a new span's cost item is new too.
    priced = _derive.price_calls((c for cs in calls for c in cs), book)
    await q.insert_costs(conn, priced)
    if with_rollups:  # last: rollup rows are the most contended, so hold their locks least
        await rollups.write_rollups(
            conn,
            new_spans,
            [(b.org_id, b.events[i]) for b, idx in zip(batches, new.events, strict=True)
             for i in idx],
            [(b.org_id, b.metric_points[i]) for b, idx in zip(batches, new.metrics, strict=True)
             for i in idx],
            priced,
        )  # fmt: skip
    return [len(cs) for cs in calls]


async def _load_prices(conn: AsyncConnection[Any]) -> PriceBook:
    cur = await conn.execute(q.SELECT_PRICES)
    return PriceBook(Price(*row) for row in await cur.fetchall())


async def _closed(conn: AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await conn.close()

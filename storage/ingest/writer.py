"""The ingest writer: group commit of concurrent export requests, acknowledged when durable.

Contract of :meth:`IngestWriter.write`:
- returns only after the batch's rows are committed (durable before return);
- idempotent: writing the same batch again stores nothing new and counts nothing twice
  (raw rows are de-duplicated on their primary keys; aggregates are derived from the
  rows actually inserted);
- concurrent calls are merged: one transaction, one binary COPY per table, for every
  batch waiting when a commit starts (group commit), so durability costs one fsync per
  group rather than per request;
- bounded and fair: when the items waiting would exceed ``max_pending_items``, or the
  items of the batch's org ``max_pending_org_items``, it raises :class:`QueueFullError`
  at once (retryable: "come back later"), for every batch; nothing is dropped; groups
  are formed round-robin by org (``storage.ingest._queue``);
- errors are classified by cause (``storage.errors.classify``): database unreachable:
  :class:`DatabaseUnavailableError` (retryable) for the group; anything else that fails
  a group (rows the database refuses, a value the driver cannot encode, any exception
  while building the rows) is isolated by splitting the group in halves until the
  batches that cause it are alone: only they fail (:class:`RefusedDataError`,
  permanent), the others are committed; a database error that is neither an outage nor
  a refusal of the data (a bug such as an undefined column) fails the group as
  retryable, so that nothing is dropped while it lasts;
- it survives anything: no exception ends a flusher; a flusher task that ends anyway
  (cancelled) is replaced and the batches it held are answered (retryable);
  :meth:`IngestWriter.health` says when the writer cannot make progress.
The caller owns nothing after the call; the writer keeps no reference to the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, errors

from storage.errors import (
    DatabaseUnavailableError,
    RefusedDataError,
    RetryableStorageError,
    StorageError,
    classify,
)
from storage.ingest import _sql as q
from storage.ingest import rollups
from storage.ingest._commit import commit_group, load_prices
from storage.ingest._queue import FairQueue, Pending, QueueFullError
from storage.ingest.pricing import PriceBook
from storage.ingest.rows import Batch
from storage.migrate import STORAGE_ENGINE, StorageEngine, engine_of

_log = logging.getLogger(__name__)

__all__ = ["CommitStats", "IngestWriter", "QueueFullError", "WriteResult", "WriterHealth"]

DEFAULT_MAX_PENDING_ITEMS = 200_000
DEFAULT_MAX_COMMIT_ITEMS = 50_000
#: A writer whose oldest waiting batch has waited this long without any batch being
#: settled meanwhile cannot make progress (reported by :meth:`IngestWriter.health`).
DEFAULT_STALL_SECONDS = 30.0
#: Groups are cut so that a commit takes about this long at the throughput measured so
#: far (at least one batch, at most ``max_commit_items``): a short commit is what lets a
#: light org's batch, first in the next group, be answered soon under a heavy org's load.
DEFAULT_TARGET_COMMIT_SECONDS = 0.2
#: After a group failed for an outage, the writer reports not ready for this long (or
#: until a commit succeeds).
UNAVAILABLE_FOR_S = 10.0
PRICE_REFRESH_S = 60.0
_RETRY_CODES = (errors.DeadlockDetected, errors.SerializationFailure)
_MAX_ATTEMPTS = 3


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


@dataclass(frozen=True, slots=True)
class WriterHealth:
    """Whether the writer makes progress, and if not, why."""

    ready: bool
    reason: str = ""


class IngestWriter:
    """Group-commit writer on its own connection(s), acting as ``aeos_ingest``."""

    def __init__(
        self,
        conninfo: str,
        *,
        max_pending_items: int = DEFAULT_MAX_PENDING_ITEMS,
        max_pending_org_items: int | None = None,
        max_commit_items: int = DEFAULT_MAX_COMMIT_ITEMS,
        flushers: int = 2,
        on_commit: Callable[[CommitStats], None] | None = None,
        maintain_rollups: bool = True,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
        target_commit_seconds: float = DEFAULT_TARGET_COMMIT_SECONDS,
    ) -> None:
        self._conninfo = conninfo
        per_org = max_pending_org_items if max_pending_org_items is not None else max_pending_items
        self._queue = FairQueue(max_pending_items, per_org)
        self._max_commit = max_commit_items
        self._target_commit_s = target_commit_seconds
        self._items_per_s: float | None = None  # commit throughput, moving average
        self._flusher_count = flushers
        self._on_commit = on_commit
        self._wakeup = asyncio.Event()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._held: dict[int, list[Pending]] = {}  # per flusher: the group it commits
        self._express = 0  # flushers committing an express group (0 or 1)
        self._closing = False
        self._prices: PriceBook | None = None
        self._prices_at = 0.0
        self._stall_s = stall_seconds
        self._progress_at = time.monotonic()
        self._unavailable: tuple[str, float] | None = None  # the last outage: why, when
        self.restarts = 0
        # Rollup tables are maintained here on the PostgreSQL engine only (TimescaleDB
        # computes them as continuous aggregates); decided when the first connection opens.
        self._maintain_rollups = maintain_rollups
        self._rollups: bool | None = None
        self._folded = True  # the schema has rollup_folds (a schema before 0021 has not)

    @property
    def pending_items(self) -> int:
        """Items accepted but not yet committed (the queue depth)."""
        return self._queue.items

    async def start(self) -> None:
        """Starts the flushers; connections are opened on first use."""
        for slot in range(self._flusher_count):
            self._spawn(slot)

    async def close(self) -> None:
        """Commits what is pending, then stops."""
        self._closing = True
        self._wakeup.set()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        left = self._queue.drain()  # only if every flusher ended early
        self._fail(left, RetryableStorageError("the writer stopped; retry"))

    async def write(self, batch: Batch) -> WriteResult:
        """Stores ``batch`` durably (see the module docstring for the contract)."""
        if self._closing:
            raise RetryableStorageError("the writer is shutting down")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        if not self._queue.items:
            self._progress_at = time.monotonic()  # idle until now: nothing was stuck
        self._queue.push(Pending(batch, future, max(batch.item_count, 1)))
        self._wakeup.set()
        return await future

    def health(self) -> WriterHealth:
        """Not ready when the database is unavailable, or batches wait without progress."""
        now = time.monotonic()
        if self._unavailable is not None and now - self._unavailable[1] < UNAVAILABLE_FOR_S:
            return WriterHealth(False, self._unavailable[0])
        if (
            self._queue.waiting
            and now - self._progress_at > self._stall_s
            and self._queue.oldest_wait(now) > self._stall_s
        ):
            return WriterHealth(False, f"no commit for {now - self._progress_at:.0f}s")
        alive = sum(not t.done() for t in self._tasks.values())
        if not self._closing and alive < self._flusher_count:
            return WriterHealth(False, f"{alive} of {self._flusher_count} writers running")
        return WriterHealth(True)

    def _group_items(self) -> int:
        if self._items_per_s is None:
            return self._max_commit
        return max(min(int(self._items_per_s * self._target_commit_s), self._max_commit), 1)

    def _measured(self, items: int, seconds: float) -> None:
        rate = items / max(seconds, 1e-3)
        old = self._items_per_s
        self._items_per_s = rate if old is None else 0.8 * old + 0.2 * rate

    def _next_group(self) -> tuple[list[Pending], bool]:
        """The group to commit, and whether it is an express one: while two orgs or more
        wait, one flusher at a time commits what all but the heaviest have waiting
        (``FairQueue.take_express``), so a light org waits for a short commit instead of
        a full group of the heavy org's. ``bench/fairness.py`` (light org at 10 % of
        capacity, heavy at 4x, same process): light p50 429-440 -> 166-224 ms, failed
        350-406 -> 95-196 of ~780 requests; the heavy org's commits -13 %."""
        max_items = self._group_items()
        if not self._express:
            group = self._queue.take_express(max_items)
            if group:
                self._express += 1
                return group, True
        return self._queue.take(max_items), False

    def _spawn(self, slot: int) -> None:
        task = asyncio.create_task(self._flush_loop(slot), name=f"aeos-writer-{slot}")
        self._tasks[slot] = task
        task.add_done_callback(lambda t: self._flusher_done(slot, t))

    def _flusher_done(self, slot: int, task: asyncio.Task[None]) -> None:
        """A flusher ended: answer what it held, and replace it unless we are closing."""
        held = self._held.pop(slot, [])
        if held:
            self._fail(held, RetryableStorageError("the writer was restarted; retry"))
        if self._closing:
            return
        reason = "cancelled" if task.cancelled() else repr(task.exception())
        _log.error("ingest writer %d ended (%s); restarting it", slot, reason)
        self.restarts += 1
        self._spawn(slot)

    async def _flush_loop(self, slot: int) -> None:
        conn: AsyncConnection[Any] | None = None
        try:
            while True:
                await self._wakeup.wait()
                group, express = self._next_group()
                if not self._queue.waiting:
                    self._wakeup.clear()
                if not group:
                    if self._closing:
                        return
                    continue
                self._held[slot] = group
                try:
                    conn = await self._commit_group(conn, group, measure=not express)
                finally:
                    self._express -= express
                self._held.pop(slot, None)
        finally:
            if conn is not None:
                await _closed(conn)

    async def _commit_group(
        self, conn: AsyncConnection[Any] | None, group: list[Pending], measure: bool = True
    ) -> AsyncConnection[Any] | None:
        """Commits ``group``; settles every batch of it, whatever happens. ``measure``: its
        throughput counts in the group size (not an express group's: cut short on purpose,
        its fixed costs would shrink the groups after it)."""
        try:
            if conn is None or conn.closed:
                conn = await self._connect()
            results = await self._commit_with_retries(conn, [p.batch for p in group], measure)
        except Exception as exc:  # a flusher must survive anything
            return await self._failed(conn, group, exc)
        except BaseException:  # cancelled: the flusher ends, its replacement reconnects
            if conn is not None:
                await _closed(conn)
            raise
        self._unavailable = None
        for pending, result in zip(group, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
        self._settled(group)
        return conn

    async def _failed(
        self, conn: AsyncConnection[Any] | None, group: list[Pending], exc: Exception
    ) -> AsyncConnection[Any] | None:
        error = classify(exc)
        if error is None and isinstance(exc, psycopg.Error):  # not the rows: our bug
            _log.error("the database failed a commit: %s", _brief(exc))
            error = RetryableStorageError(f"the database failed: {_brief(exc)}; retry later")
        if isinstance(error, RetryableStorageError):  # an outage: the group may retry
            if isinstance(error, DatabaseUnavailableError):
                self._unavailable = (str(error), time.monotonic())
                if conn is not None:
                    await _closed(conn)
                conn = None
            _log.warning("%d export requests not written: %s", len(group), error)
            self._fail(group, error)
            return conn
        if conn is not None and (error is None or conn.broken):
            await _closed(conn)  # not a refusal by the server: the session state is unknown
            conn = None
        if len(group) > 1:  # find the batches that cause it; commit the others
            half = len(group) // 2
            conn = await self._commit_group(conn, group[:half])
            return await self._commit_group(conn, group[half:])
        refused = error or RefusedDataError(f"the data cannot be stored: {_brief(exc)}")
        _log.warning("export of org %s refused: %s", group[0].batch.org_id, refused)
        _log.debug("refused export", exc_info=exc)
        self._fail(group, refused)
        return conn

    def _fail(self, group: list[Pending], error: StorageError) -> None:
        for pending in group:
            if not pending.future.done():
                pending.future.set_exception(error)
        self._settled(group)

    def _settled(self, group: list[Pending]) -> None:
        if group:
            self._queue.release(group)
            self._progress_at = time.monotonic()

    async def _connect(self) -> AsyncConnection[Any]:
        conn = await AsyncConnection.connect(self._conninfo, autocommit=True, connect_timeout=5)
        try:
            await conn.execute(q.SET_INGEST_ROLE)
            q.configure(conn)
            if self._rollups is None:
                cur = await conn.execute(STORAGE_ENGINE)
                row = await cur.fetchone()
                engine = engine_of(row[0]) if row is not None else None
                self._rollups = self._maintain_rollups and engine is StorageEngine.POSTGRES
                if self._rollups:
                    cur = await conn.execute(q.FOLDS_EXIST)
                    self._folded = bool(await cur.fetchone() == (True,))
            if self._rollups:
                await rollups.create_temp_tables(conn)
        except BaseException:
            await _closed(conn)
            raise
        return conn

    async def _price_book(self, conn: AsyncConnection[Any]) -> PriceBook:
        if self._prices is None or time.monotonic() - self._prices_at > PRICE_REFRESH_S:
            self._prices = await load_prices(conn)
            self._prices_at = time.monotonic()
        return self._prices

    async def _commit_with_retries(
        self, conn: AsyncConnection[Any], batches: list[Batch], measure: bool = True
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
        items, seconds = sum(b.item_count for b in batches), time.perf_counter() - started
        if measure:
            self._measured(items, seconds)
        if self._on_commit is not None:
            self._on_commit(CommitStats(len(batches), items, seconds, slow))
        return results

    async def _commit(
        self, conn: AsyncConnection[Any], batches: list[Batch], slow: bool
    ) -> list[WriteResult]:
        book = await self._price_book(conn)
        new, cost_items = await commit_group(
            conn, batches, book, slow, bool(self._rollups), self._folded
        )
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


async def _closed(conn: AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"

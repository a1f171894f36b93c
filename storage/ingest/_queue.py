"""The ingest writer's queue: bounded in total and per org, served round-robin by org.

Fairness is decided here. A batch is refused at once (:class:`QueueFullError`, "retry
later") when it would take the items waiting, or the items of its own org, over their
bound: whatever the queue holds, and for every batch, so one org can never take the
whole queue. Commit groups take one batch per org in turn, lightest org first (the org
with the fewest items waiting or being committed), so an org sending little goes into
the very next group however many batches a heavy org has queued; the writer keeps
groups short in time (``storage.ingest.writer``), so that next group comes soon, and
while several orgs wait it commits the lighter ones' batches without the heaviest org's,
in an express group (:meth:`FairQueue.take_express`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage.errors import RetryableStorageError
from storage.ingest.rows import Batch

if TYPE_CHECKING:
    from storage.ingest.writer import WriteResult


class QueueFullError(RetryableStorageError):
    """Too much is waiting to be written; the request should be retried later."""


@dataclass
class Pending:
    """One batch waiting for its commit, and the future its caller awaits."""

    batch: Batch
    future: asyncio.Future[WriteResult]
    items: int
    queued_at: float = field(default_factory=time.monotonic)
    released: bool = False  # its items no longer count (settled)


class FairQueue:
    """Batches per org, bounded; items count until their batch is settled."""

    def __init__(self, max_items: int, max_org_items: int) -> None:
        self._max = max_items
        self._max_org = max_org_items
        self._by_org: dict[uuid.UUID, deque[Pending]] = {}
        self._turns: deque[uuid.UUID] = deque()  # orgs with batches waiting, in turn order
        self._org_items: dict[uuid.UUID, int] = {}
        self.items = 0  # waiting or being committed
        self.waiting = 0  # batches not yet taken

    def push(self, pending: Pending) -> None:
        """Queues ``pending``.

        Raises:
            QueueFullError: the queue, or this org's share of it, cannot take the batch.
        """
        org, n = pending.batch.org_id, pending.items
        if self.items + n > self._max:
            raise QueueFullError(f"{self.items} items are waiting to be written")
        held = self._org_items.get(org, 0)
        if held + n > self._max_org:
            raise QueueFullError(
                f"{held} items of this org are waiting to be written "
                f"(at most {self._max_org} per org)"
            )
        self._org_items[org] = held + n
        self.items += n
        self.waiting += 1
        queue = self._by_org.get(org)
        if queue is None:
            queue = self._by_org[org] = deque()
            self._turns.append(org)
        queue.append(pending)

    def take(self, max_items: int) -> list[Pending]:
        """The next commit group: one batch per org in turn, lightest org first, up to
        ``max_items`` items (a single batch larger than that makes a group of its own)."""
        if len(self._turns) > 1:  # a stable sort: equal orgs keep their round-robin order
            self._turns = deque(sorted(self._turns, key=self._org_items.__getitem__))
        return self._take(max_items)

    def take_express(self, max_items: int) -> list[Pending]:
        """A group of what every org but the heaviest has waiting, as :meth:`take` forms
        one; empty unless two orgs or more have batches waiting.

        :meth:`take` puts a light org's batch first, then fills the group with the heavy
        org's: the light one is answered after a full commit. In a group without them it
        is answered after a short one (``storage.ingest.writer``).
        """
        if len(self._turns) < 2:
            return []
        self._turns = deque(sorted(self._turns, key=self._org_items.__getitem__))
        heaviest = self._turns.pop()
        group = self._take(max_items)
        self._turns.append(heaviest)
        return group

    def _take(self, max_items: int) -> list[Pending]:
        group: list[Pending] = []
        items = 0
        while self._turns:
            org = self._turns[0]
            queue = self._by_org[org]
            if group and items + queue[0].items > max_items:
                break
            pending = queue.popleft()
            group.append(pending)
            items += pending.items
            self._turns.popleft()
            if queue:
                self._turns.append(org)
            else:
                del self._by_org[org]
        self.waiting -= len(group)
        return group

    def release(self, group: list[Pending]) -> None:
        """Frees the items of settled batches (committed or failed); each only once."""
        for pending in group:
            if pending.released:
                continue
            pending.released = True
            org = pending.batch.org_id
            left = self._org_items[org] - pending.items
            if left:
                self._org_items[org] = left
            else:
                del self._org_items[org]
            self.items -= pending.items

    def drain(self) -> list[Pending]:
        """Everything still waiting (at shutdown, when no flusher is left to take it)."""
        out: list[Pending] = []
        while self._turns:
            out.extend(self.take(2**62))
        return out

    def oldest_wait(self, now: float) -> float:
        """Seconds the oldest waiting batch has waited (0 when none waits)."""
        return max((now - q[0].queued_at for q in self._by_org.values()), default=0.0)

"""What the transports share within one receiver process, and its admission control.

Admission keeps one credential from starving the others (issue 9, finding 3): every
request of a key is counted against the process's concurrency limit *and* the key's own
(:class:`Admission`), and its items against the key's token bucket (:class:`RateLimits`);
either refusal is "retry later" (429 / UNAVAILABLE with a retry delay). Request bodies
being received are bounded in bytes per process (:class:`BodyBudget`), so slow or stalled
senders cannot hold more memory than that.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field

from otlp_receiver import _errors, _metrics
from otlp_receiver._auth import Authenticator
from otlp_receiver._handlers import Writer
from otlp_receiver._translate import Limits

#: A full export request: the OpenTelemetry SDKs' batch processors send at most 512 items
#: (``max_export_batch_size``). A key's share of a process counts each request being read
#: as a full one and, once decoded, as its items, between a quarter and one full request.
#: Counting requests alone refused a light key that sends small requests for the latency a
#: heavy key caused (``bench/fairness.py``, light org at 10 % of capacity in requests of 50
#: spans: with the writer's express groups, 95-196 of ~800 refused, 10-38 with this).
FULL_REQUEST_ITEMS = 512
MIN_REQUEST_SHARE = FULL_REQUEST_ITEMS // 4


@dataclass(slots=True)
class Admission:
    """How many export requests this process works on, in all and per key.

    Requests beyond either limit are refused at once with "retry later" instead of
    waiting in memory for a core. The process's limit counts requests; a key's limit,
    ``per_key`` full requests, counts them by size (:data:`FULL_REQUEST_ITEMS`).
    """

    limit: int
    per_key: int = 8
    in_flight: int = 0
    by_key: dict[uuid.UUID, list[int]] = field(default_factory=dict)  # [requests, share]

    def enter(self, key_id: uuid.UUID) -> int:
        """Takes one slot of the process and a full request's share of ``key_id``'s, and
        returns that share; :meth:`resize` shrinks it once the request is decoded,
        :meth:`leave` frees them. (Not a ``contextmanager``: it would set
        ``__traceback__`` on the frozen ``ReceiverError`` passing through it.)

        Raises:
            ReceiverError: 429 / UNAVAILABLE when either limit is reached.
        """
        if self.in_flight >= self.limit:
            raise _errors.overloaded(f"{self.in_flight} requests in progress; retry later")
        mine = self.by_key.get(key_id)
        if mine is None:
            mine = self.by_key[key_id] = [0, 0]
        elif mine[1] + FULL_REQUEST_ITEMS > self.per_key * FULL_REQUEST_ITEMS:
            raise _errors.overloaded(
                f"{mine[0]} requests of this key are in progress (at most {self.per_key} of "
                f"{FULL_REQUEST_ITEMS} items, smaller ones counting less); retry later",
                reason="key_busy",
            )
        self.in_flight += 1
        mine[0] += 1
        mine[1] += FULL_REQUEST_ITEMS
        return FULL_REQUEST_ITEMS

    def resize(self, key_id: uuid.UUID, items: int) -> int:
        """The share of a request of ``key_id`` now that it is known to hold ``items``;
        returns it (to pass to :meth:`leave`)."""
        share = min(max(items, MIN_REQUEST_SHARE), FULL_REQUEST_ITEMS)
        self.by_key[key_id][1] -= FULL_REQUEST_ITEMS - share
        return share

    def leave(self, key_id: uuid.UUID, share: int = FULL_REQUEST_ITEMS) -> None:
        """Frees the slots :meth:`enter` took (``share``: what :meth:`resize` returned)."""
        self.in_flight -= 1
        mine = self.by_key[key_id]
        if mine[0] == 1:
            del self.by_key[key_id]
        else:
            mine[0] -= 1
            mine[1] -= share


@dataclass(slots=True)
class RateLimits:
    """A token bucket of items per key: ``rate`` per second, up to ``burst`` saved."""

    rate: float  # 0: no limit
    burst: int
    _buckets: dict[uuid.UUID, tuple[float, float]] = field(default_factory=dict)

    def charge(self, key_id: uuid.UUID, items: int) -> None:
        """Takes ``items`` tokens from the key's bucket.

        Raises:
            ReceiverError: 429 / UNAVAILABLE with the delay after which they are there.
        """
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, at = self._buckets.get(key_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < items:
            self._buckets[key_id] = (tokens, now)
            wait = math.ceil((items - tokens) / self.rate)
            raise _errors.overloaded(
                f"this key is over its rate limit of {self.rate:g} items per second; "
                f"retry in {wait}s",
                retry_after_s=max(wait, 1),
                reason="rate_limited",
            )
        self._buckets[key_id] = (tokens - items, now)


@dataclass(slots=True)
class BodyBudget:
    """Bytes of request bodies this process is receiving or holding, and the bound.

    One key may hold at most half of it, so a key that stalls its uploads leaves the
    other half to everyone else (until the body timeout frees its share).
    """

    limit: int
    used: int = 0
    by_key: dict[uuid.UUID, int] = field(default_factory=dict)

    def take(self, key_id: uuid.UUID, n: int) -> None:
        """Reserves ``n`` bytes for a body of ``key_id``.

        Raises:
            ReceiverError: 429 when the bodies in flight (in all, or of this key) would
                exceed the bound.
        """
        mine = self.by_key.get(key_id, 0)
        if self.used + n > self.limit or mine + n > self.limit // 2:
            raise _errors.overloaded(
                "too many request bodies are being received; retry later",
                reason="bodies_in_flight",
            )
        self.used += n
        self.by_key[key_id] = mine + n
        _metrics.BODY_BYTES_IN_FLIGHT.set(self.used)

    def check_room(self, key_id: uuid.UUID) -> None:
        """Refuses a body before reading any of it while the bound (in all, or the key's
        half) is already reached: for gRPC, whose messages are sized only on arrival.

        Raises:
            ReceiverError: 429 / UNAVAILABLE, as :meth:`take`.
        """
        if self.used >= self.limit or self.by_key.get(key_id, 0) >= self.limit // 2:
            raise _errors.overloaded(
                "too many request bodies are being received; retry later",
                reason="bodies_in_flight",
            )

    def give_back(self, key_id: uuid.UUID, n: int) -> None:
        """Frees ``n`` bytes reserved for ``key_id``."""
        if not n:
            return
        self.used -= n
        _metrics.BODY_BYTES_IN_FLIGHT.set(self.used)
        left = self.by_key[key_id] - n
        if left:
            self.by_key[key_id] = left
        else:
            del self.by_key[key_id]


@dataclass(frozen=True, slots=True)
class ReceiverContext:
    """The authenticator, the writer, the limits and admission of one process."""

    auth: Authenticator
    writer: Writer
    limits: Limits
    max_request_bytes: int
    admission: Admission = field(default_factory=lambda: Admission(64))
    max_request_items: int = 30_000
    rates: RateLimits = field(default_factory=lambda: RateLimits(0.0, 1))
    bodies: BodyBudget = field(default_factory=lambda: BodyBudget(256 * 1024 * 1024))
    body_timeout_s: float = 30.0

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


@dataclass(slots=True)
class Admission:
    """How many export requests this process works on, in all and per key.

    Requests beyond either limit are refused at once with "retry later" instead of
    waiting in memory for a core.
    """

    limit: int
    per_key: int = 8
    in_flight: int = 0
    by_key: dict[uuid.UUID, int] = field(default_factory=dict)

    def enter(self, key_id: uuid.UUID) -> None:
        """Takes one slot of the process and one of ``key_id``; :meth:`leave` frees them.

        (Not a ``contextmanager``: it would set ``__traceback__`` on the frozen
        ``ReceiverError`` passing through it.)

        Raises:
            ReceiverError: 429 / UNAVAILABLE when either limit is reached.
        """
        if self.in_flight >= self.limit:
            raise _errors.overloaded(f"{self.in_flight} requests in progress; retry later")
        mine = self.by_key.get(key_id, 0)
        if mine >= self.per_key:
            raise _errors.overloaded(
                f"{mine} requests of this key are in progress (at most {self.per_key}); "
                "retry later",
                reason="key_busy",
            )
        self.in_flight += 1
        self.by_key[key_id] = mine + 1

    def leave(self, key_id: uuid.UUID) -> None:
        """Frees the slots :meth:`enter` took."""
        self.in_flight -= 1
        left = self.by_key[key_id] - 1
        if left:
            self.by_key[key_id] = left
        else:
            del self.by_key[key_id]


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

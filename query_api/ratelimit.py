"""A per-credential rate limit: one token bucket per credential, in this process.

Each API process keeps its own buckets (no shared state to fail or to wait on); with
``AEOS_API_WORKERS`` processes a client spread over several connections may get up to
that many times the rate, which is what a per-replica limit means behind a load
balancer too. Idle buckets are dropped so memory stays bounded by active credentials.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate_per_minute`` requests a minute per key, bursts of up to ``burst``."""

    def __init__(
        self,
        rate_per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_per_minute / 60.0
        self._burst = float(max(burst, 1))
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when the rate is 0 (no limit)."""
        return self._rate > 0

    def acquire(self, key: str) -> float:
        """Takes one token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_BUCKETS:
                    self._evict(now)
                bucket = self._buckets[key] = _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate

    def _evict(self, now: float) -> None:
        # A bucket refilled to its burst holds no information: drop those first.
        full_after = self._burst / self._rate
        stale = [k for k, b in self._buckets.items() if now - b.updated >= full_after]
        for key in stale or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def retry_after_seconds(wait: float) -> int:
    """The ``Retry-After`` value (whole seconds, at least 1) for a wait."""
    return max(1, math.ceil(wait))

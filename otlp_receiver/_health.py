"""Periodic platform-health rows: what this receiver process did in the last interval."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from storage import PlatformHealthRow, write_platform_health

_log = logging.getLogger(__name__)
REPORT_EVERY_S = 60.0
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class _Counts:
    accepted: int = 0
    rejected: int = 0
    refused: int = 0
    requests: int = 0


@dataclass
class HealthStats:
    """Counters since the last report (this process only)."""

    signals: defaultdict[str, _Counts] = field(default_factory=lambda: defaultdict(_Counts))
    commits: int = 0
    commit_seconds_sum: float = 0.0
    commit_seconds_max: float = 0.0

    def count(self, signal: str, *, accepted: int = 0, rejected: int = 0, refused: int = 0) -> None:
        """Records one request's outcome."""
        c = self.signals[signal]
        c.accepted += accepted
        c.rejected += rejected
        c.refused += refused
        c.requests += 1

    def commit(self, seconds: float) -> None:
        """Records one group commit."""
        self.commits += 1
        self.commit_seconds_sum += seconds
        self.commit_seconds_max = max(self.commit_seconds_max, seconds)

    def drain(self, queue_items: int) -> list[PlatformHealthRow]:
        """Rows for ``platform_health`` since the last call; resets the counters."""
        now = datetime.now(UTC)
        signals = dict(self.signals) or {"all": _Counts()}
        rows = [
            PlatformHealthRow(now, INSTANCE, name, c.accepted, c.rejected, c.refused, c.requests,
                              queue_items, self.commits, self.commit_seconds_sum,
                              self.commit_seconds_max)
            for name, c in sorted(signals.items())
        ]  # fmt: skip
        self.signals.clear()
        self.commits, self.commit_seconds_sum, self.commit_seconds_max = 0, 0.0, 0.0
        return rows


STATS = HealthStats()


async def report_forever(conninfo: str, queue_items: Any, every_s: float = REPORT_EVERY_S) -> None:
    """Writes a report every ``every_s`` seconds; a failed report is logged and skipped."""
    while True:
        await asyncio.sleep(every_s)
        rows = STATS.drain(queue_items())
        try:
            await write_platform_health(conninfo, rows)
        except psycopg.Error as exc:
            _log.warning("platform health report not written: %s", exc)

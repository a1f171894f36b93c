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
from psycopg import AsyncConnection

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

    def drain(self, queue_items: int) -> list[tuple[Any, ...]]:
        """Rows for ``platform_health`` since the last call; resets the counters."""
        now = datetime.now(UTC)
        signals = dict(self.signals) or {"all": _Counts()}
        rows = [
            (now, INSTANCE, name, c.accepted, c.rejected, c.refused, c.requests, queue_items,
             self.commits, self.commit_seconds_sum, self.commit_seconds_max)
            for name, c in sorted(signals.items())
        ]  # fmt: skip
        self.signals.clear()
        self.commits, self.commit_seconds_sum, self.commit_seconds_max = 0, 0.0, 0.0
        return rows


STATS = HealthStats()

INSERT = (
    "INSERT INTO platform_health (time, instance, signal, accepted, rejected, refused, requests, "
    "queue_items, commits, commit_seconds_sum, commit_seconds_max) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


async def write_report(conninfo: str, rows: list[tuple[Any, ...]]) -> None:
    """Inserts one report (as ``aeos_ingest``)."""
    async with await AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        await conn.execute("SET ROLE aeos_ingest")
        async with conn.cursor() as cur:
            await cur.executemany(INSERT, rows)


async def report_forever(conninfo: str, queue_items: Any, every_s: float = REPORT_EVERY_S) -> None:
    """Writes a report every ``every_s`` seconds; a failed report is logged and skipped."""
    while True:
        await asyncio.sleep(every_s)
        rows = STATS.drain(queue_items())
        try:
            await write_report(conninfo, rows)
        except psycopg.Error as exc:
            _log.warning("platform health report not written: %s", exc)

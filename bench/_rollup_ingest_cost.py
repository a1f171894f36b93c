"""What maintaining rollups at ingest costs (part 3 of bench/rollups.py), two ways.

End to end (:func:`measure_ingest_cost`), the figure the target is about: two ``aeos serve`` processes share one fresh database: one maintains the rollup tables
in its ingest transactions, the other does not (``AEOS_RECEIVER_ROLLUPS_AT_INGEST``).
They are driven in turn, never together, with the OTLP/gRPC requests of bench/ingest.py
(500 spans of about 20 attributes each, fresh trace ids per request), in the order on,
off, off, on, on, off, ... so that a drift of the shared machine's load over the run
weighs on both sides alike. The request templates carry the time they were built, so
all spans fall in the same minute: as in live traffic, concurrent writers update the
same current-minute (and hour, and day) rollup rows.

Backfill-shaped (:func:`measure_backfill_cost`): the IngestWriter alone, fed the
benchmark's own synthetic spans spread over 30 days (fresh orgs in a fresh database each
run, in the same alternating order). At 10M spans over 30 days nearly every span opens
a 1 min rollup row of its own, which is the worst case for maintenance at ingest.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL

from bench._rollup_load import load, new_world
from bench.ingest import build_request, drive
from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migrate import migrate
from storage.settings import EngineChoice
from tests.conftest import TEST_APP_PASSWORD
from tests.e2e.conftest import start_service, stop_service

WARM_UP_S = 3.0


@dataclass
class IngestCost:
    """Acknowledged spans and seconds of each run, with rollups at ingest and without."""

    on: list[tuple[int, float]] = field(default_factory=list)
    off: list[tuple[int, float]] = field(default_factory=list)
    acked: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    stored: int = 0  # spans in the table afterwards (all runs and warm-ups)
    in_rollups: int = 0  # spans counted by platform_red_1m afterwards

    @staticmethod
    def rate(runs: list[tuple[int, float]]) -> float:
        """Spans/s over all of ``runs``."""
        return sum(a for a, _ in runs) / sum(s for _, s in runs)

    @property
    def cost(self) -> float:
        """1 - (spans/s with rollups) / (spans/s without)."""
        return 1 - self.rate(self.on) / self.rate(self.off)

    def problems(self) -> list[str]:
        """Every acknowledged span stored, and counted by the rollups iff they were on."""
        out = []
        if self.stored != self.acked[True] + self.acked[False]:
            out.append(f"ingest: {self.stored} spans stored, {sum(self.acked.values())} acked")
        if self.in_rollups != self.acked[True]:
            out.append(f"ingest: rollups count {self.in_rollups} spans, "
                       f"{self.acked[True]} were acked with rollups on")  # fmt: skip
        return out


def measure_ingest_cost(pg: EmbeddedPostgres, tmp: Path, rounds: int, seconds: float,
                        spans_per_request: int, concurrency: int) -> IngestCost:  # fmt: skip
    """Runs ``rounds`` pairs of runs (one with rollups, one without) of ``seconds`` each."""
    url = pg.ensure_database("bench_ingest_cost")
    migrate(url, EngineChoice.POSTGRES)
    db = Database(url, TEST_APP_PASSWORD)
    with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        key = admin.create_org(conn, "ingest-cost", "enterprise").ingest_key.plaintext
    db.close()
    rng = random.Random(42)
    payloads = [build_request(spans_per_request, seq, rng) for seq in range(64)]
    services = {}
    result = IngestCost()
    try:
        for on in (True, False):  # one after the other: each migrates at start
            proc, _env, _banner, ports = start_service(
                url, tmp / f"serve-{on}", AEOS_RECEIVER_ROLLUPS_AT_INGEST=str(on).lower(),
                AEOS_RECEIVER_AUTH_CACHE_SECONDS="60",
            )  # fmt: skip
            services[on] = (proc, f"127.0.0.1:{ports[0]}")
        for on, (_proc, endpoint) in services.items():
            acked, _refused, _s = asyncio.run(drive(endpoint, key, payloads[:8], spans_per_request,
                                                    4, WARM_UP_S, first_seq=10**12 + on * 10**9))  # fmt: skip
            result.acked[on] += acked
        for run, on in enumerate(_order(rounds)):
            acked, refused, elapsed = asyncio.run(drive(
                services[on][1], key, payloads, spans_per_request, concurrency, seconds,
                first_seq=(run + 1) * 10**8,
            ))  # fmt: skip
            result.acked[on] += acked
            (result.on if on else result.off).append((acked, elapsed))
            print(f"  rollups at ingest {'on ' if on else 'off'}: {acked / elapsed:,.0f} spans/s "
                  f"({acked} spans in {elapsed:.1f}s, {refused} requests refused)", flush=True)  # fmt: skip
    finally:
        for proc, _ in services.values():
            stop_service(proc)
    _count_stored(url, result)
    return result


def measure_backfill_cost(pg: EmbeddedPostgres, rounds: int, spans: int, orgs: int, days: int,
                          batch_spans: int, concurrency: int, seed: int) -> IngestCost:  # fmt: skip
    """``rounds`` pairs of loads of ``spans`` spread over ``days`` days, writer direct."""
    url = pg.ensure_database("bench_backfill_cost")
    now = datetime.now(UTC)
    since, until = now - timedelta(days=days), now - timedelta(minutes=1)
    result = IngestCost()
    for run, on in enumerate(_order(rounds)):
        world = new_world(url, orgs, spans, since, until, batch_spans, prefix=f"run{run}")
        stored, elapsed, _ = asyncio.run(load(world.db.app_conninfo(), world, concurrency,
                                              seed + run, maintain_rollups=on,
                                              progress_every_s=float("inf")))  # fmt: skip
        world.db.close()
        result.acked[on] += stored
        (result.on if on else result.off).append((stored, elapsed))
        print(f"  backfill-shaped, writer direct, rollups {'on ' if on else 'off'}: "
              f"{stored / elapsed:,.0f} spans/s ({stored} spans in {elapsed:.1f}s)", flush=True)  # fmt: skip
    _count_stored(url, result)
    return result


def _order(rounds: int) -> list[bool]:
    """on, off, off, on, on, off, ...: ``rounds`` pairs."""
    return [on for i in range(rounds) for on in ((True, False) if i % 2 == 0 else (False, True))]


def _count_stored(url: URL, result: IngestCost) -> None:
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    deadline = time.monotonic() + 10
    with psycopg.connect(conninfo) as conn:
        while True:  # every acked span is committed before its ack; this is belt and braces
            row = conn.execute("SELECT count(*) FROM spans").fetchone()
            result.stored = int(row[0]) if row else 0
            if result.stored >= sum(result.acked.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        row = conn.execute("SELECT coalesce(sum(span_count), 0) FROM platform_red_1m").fetchone()
        result.in_rollups = int(row[0]) if row else 0

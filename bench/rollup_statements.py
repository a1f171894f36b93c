"""Rollup maintenance per group commit (PostgreSQL engine): coarse levels folded by a job
(migration 0021) against every level merged at ingest (the schema of 0020).

    .venv/bin/python bench/rollup_statements.py [--spans 500] [--commits 300]

One request of bench/ingest.py (``--spans`` spans of about 20 attributes, one minute) is
translated and aggregated into its 1 min rollup rows once. A fresh embedded PostgreSQL
(fsync on) holds two databases, one migrated to 0020 and one to head; on one connection to
each, acting as the ingest role, transactions that merge those rows into the rollups and
commit are timed in turn (interleaved): the writer's statements for each schema
(``storage.ingest.rollups.queue_rollups``) and an empty commit. Prints the median
milliseconds per commit of each and the ratio of the rollups' own time (minus the empty
commit's), measured in the same run; then the time of the job folding the hour those
commits wrote (``storage.jobs.rollup_folds``), which is paid once an hour, not per commit.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import build_request  # noqa: E402
from otlp_receiver._decode import PROTOBUF  # noqa: E402
from otlp_receiver._lite import decode_traces_fast  # noqa: E402
from otlp_receiver._translate import translate_traces  # noqa: E402
from storage import admin  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.embedded import EmbeddedPostgres, free_port  # noqa: E402
from storage.ingest import _sql as q  # noqa: E402
from storage.ingest import rollups  # noqa: E402
from storage.ingest._commit import NewRows, derive  # noqa: E402
from storage.ingest._rollup_params import BASE_FAMILIES  # noqa: E402
from storage.ingest._rollup_rows import rollup_rows  # noqa: E402
from storage.ingest.pricing import PriceBook  # noqa: E402
from storage.jobs.rollup_folds import fold_rollups  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.settings import EngineChoice  # noqa: E402
from storage.tenancy import DbRole, Scope, act_as  # noqa: E402

Rows = dict[str, list[tuple[Any, ...]]]


async def every_level(conn: AsyncConnection[Any], rows: Rows) -> None:
    await rollups.queue_rollups(conn, rows, folded=False)


async def folded(conn: AsyncConnection[Any], rows: Rows) -> None:
    await rollups.queue_rollups(conn, rows, folded=True)


async def nothing(conn: AsyncConnection[Any], rows: Rows) -> None:
    return None


Shape = Callable[[AsyncConnection[Any], Rows], Awaitable[None]]


async def commit(conn: AsyncConnection[Any], shape: Shape, rows: Rows) -> float:
    started = time.perf_counter()
    await conn.execute(q.BEGIN)
    async with conn.pipeline():
        await shape(conn, rows)
        await conn.execute(q.COMMIT)
    return time.perf_counter() - started


def one_request_rows(db: Database, spans: int) -> Rows:
    with db.admin_engine().begin() as conn:
        act_as(conn, Scope(DbRole.STAFF))
        org = admin.create_org(conn, "bench", "enterprise").org_id
    body = build_request(spans, 1, random.Random(1))
    batch = translate_traces(decode_traces_fast(body, PROTOBUF), org).batch
    new = NewRows([list(range(len(batch.spans)))], [[]], [[]])
    derived = derive([batch], new, PriceBook([]), False)
    return rollup_rows(derived.new_spans, [], [], derived.costs)


async def measure(commits: int, shapes: dict[str, tuple[str, Shape, Rows]]) -> dict[str, float]:
    """Median ms per commit of each shape, each on its own connection (``conninfo``)."""
    conns: dict[str, AsyncConnection[Any]] = {}
    try:
        for name, (conninfo, _, _) in shapes.items():
            conn = conns[name] = await AsyncConnection.connect(conninfo, autocommit=True)
            await conn.execute(q.SET_INGEST_ROLE)
            q.configure(conn)
            await rollups.create_temp_tables(conn, BASE_FAMILIES)  # as every writer has them
        times: dict[str, list[float]] = {name: [] for name in shapes}
        for i in range(commits + 30):  # the first 30 of each warm up (plans, caches)
            for name, (_, shape, rows) in shapes.items():
                elapsed = await commit(conns[name], shape, rows)
                if i >= 30:
                    times[name].append(elapsed)
        return {name: statistics.median(t) * 1e3 for name, t in times.items()}
    finally:
        for conn in conns.values():
            await conn.close()


def database(pg: EmbeddedPostgres, name: str, revision: str) -> Database:
    url = pg.ensure_database(name)
    migrate(url, EngineChoice.POSTGRES, revision)
    db = Database(url, "bench-app-password")
    with db.admin_engine().begin() as conn:
        conn.execute(text("ALTER ROLE aeos_app LOGIN PASSWORD 'bench-app-password'"))
    return db


def timed_fold(db: Database) -> tuple[float, int]:
    """Seconds of one run of the fold job over everything written, and the rows it wrote."""
    engine = db.app_engine(pool_size=1)
    try:
        started = time.perf_counter()
        result = fold_rollups(engine, datetime.now(UTC) + timedelta(days=2))
        return time.perf_counter() - started, sum(result["folded"].values())
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=500)
    parser.add_argument("--commits", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        pg.start()
        try:
            before, head = database(pg, "at0020", "0020"), database(pg, "head", "head")
            rows = one_request_rows(head, args.spans)
            old_rows = one_request_rows(before, args.spans)  # the same rows, for its own org
            shapes: dict[str, tuple[str, Shape, Rows]] = {
                "every level (0020)": (before.app_conninfo(), every_level, old_rows),
                "folded (0021)": (head.app_conninfo(), folded, rows),
                "empty": (head.app_conninfo(), nothing, rows),
            }
            ms = asyncio.run(measure(args.commits, shapes))
            fold_s, folded_rows = timed_fold(head)
        finally:
            pg.stop()
    print(f"rollup rows of one {args.spans}-span request: "
          + ", ".join(f"{k} {len(v)}" for k, v in rows.items() if v))  # fmt: skip
    for name, value in ms.items():
        print(f"{name:>18}: {value:6.2f} ms per commit (median of {args.commits}, interleaved)")
    old = ms["every level (0020)"] - ms["empty"]
    new = ms["folded (0021)"] - ms["empty"]
    print(f"rollups alone: every level {old:.2f} ms, folded {new:.2f} ms, ratio {new / old:.2f}")
    print(f"fold job over all of it: {fold_s * 1e3:.1f} ms, {folded_rows} rows written")


if __name__ == "__main__":
    main()

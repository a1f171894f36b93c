"""Rollup maintenance per group commit (PostgreSQL engine): one statement per family against
the earlier shape, a staging INSERT into a temporary table and one statement per level.

    .venv/bin/python bench/rollup_statements.py [--spans 500] [--commits 300]

One request of bench/ingest.py (``--spans`` spans of about 20 attributes, one minute) is
translated and aggregated into its 1 min rollup rows once; then, on one connection acting
as the ingest role of a fresh embedded PostgreSQL (fsync on), transactions that merge
those rows into every rollup and commit are timed in turn: the earlier shape, the
writer's (``storage.ingest.rollups.queue_rollups``), and an empty one. Prints the median
milliseconds per commit of each and the ratio of the rollups' own time (minus the empty
commit's), measured in the same run. Then the rollup tables get back the generated
p50/p95/p99 columns they had before migration 0020 and the writer's shape is timed again
against the empty commit: the cost of computing percentiles at every upsert.
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
from storage.ingest._rollup_params import BASE_FAMILIES, stage_params  # noqa: E402
from storage.ingest._rollup_rows import rollup_rows  # noqa: E402
from storage.ingest.pricing import PriceBook  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.schema import FAMILIES  # noqa: E402
from storage.settings import EngineChoice  # noqa: E402
from storage.tenancy import DbRole, Scope, act_as  # noqa: E402

Rows = dict[str, list[tuple[Any, ...]]]
#: The earlier shape: every family staged in its temp table, then one upsert per level.
PER_LEVEL = {f.name: rollups._statements(f, f"{rollups._temp(f)} AS s") for f in BASE_FAMILIES}


async def per_level(conn: AsyncConnection[Any], rows: Rows) -> None:
    for family in BASE_FAMILIES:
        family_rows = rows.get(family.name)
        if not family_rows:
            continue
        await conn.execute(rollups.STAGE[family.name], stage_params(family, family_rows))
        if family.recompute:
            await conn.execute(q.ROLLUP_LOCK, (family.name, sorted({r[1] for r in family_rows})))
        for statement in PER_LEVEL[family.name]:
            await conn.execute(statement)


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


def add_stored_quantiles(db: Database) -> None:
    """The generated p-columns of migration 0019 (dropped by 0020), rows emptied."""
    with db.admin_engine().begin() as conn:
        for family in FAMILIES:
            for level in family.levels:
                adds = [
                    f"ADD COLUMN {column} double precision GENERATED ALWAYS AS "
                    f"({quantiles.sql(q)}) STORED"
                    for quantiles in family.quantiles
                    for column, q in quantiles.columns()
                ]
                conn.execute(text(f"TRUNCATE {family.relation(level)}"))
                if adds:
                    conn.execute(text(f"ALTER TABLE {family.relation(level)} {', '.join(adds)}"))


async def measure(
    conninfo: str, rows: Rows, commits: int, shapes: dict[str, Shape]
) -> dict[str, float]:
    conn = await AsyncConnection.connect(conninfo, autocommit=True)
    try:
        await conn.execute(q.SET_INGEST_ROLE)
        q.configure(conn)
        await rollups.create_temp_tables(conn, BASE_FAMILIES)  # as every writer had them
        times: dict[str, list[float]] = {name: [] for name in shapes}
        for i in range(commits + 30):  # the first 30 of each warm up (plans, caches)
            for name, shape in shapes.items():
                elapsed = await commit(conn, shape, rows)
                if i >= 30:
                    times[name].append(elapsed)
        return {name: statistics.median(t) * 1e3 for name, t in times.items()}
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=500)
    parser.add_argument("--commits", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        pg.start()
        try:
            url = pg.ensure_database("bench")
            migrate(url, EngineChoice.POSTGRES)
            db = Database(url, "bench-app-password")
            with db.admin_engine().begin() as conn:
                conn.execute(text("ALTER ROLE aeos_app LOGIN PASSWORD 'bench-app-password'"))
            rows = one_request_rows(db, args.spans)
            shapes: dict[str, Shape] = {
                "per level": per_level,
                "one per family": rollups.queue_rollups,
                "empty": nothing,
            }
            ms = asyncio.run(measure(db.app_conninfo(), rows, args.commits, shapes))
            add_stored_quantiles(db)
            shapes = {"stored p-columns": rollups.queue_rollups, "empty": nothing}
            stored = asyncio.run(measure(db.app_conninfo(), rows, args.commits, shapes))
        finally:
            pg.stop()
    print(f"rollup rows of one {args.spans}-span request: "
          + ", ".join(f"{k} {len(v)}" for k, v in rows.items() if v))  # fmt: skip
    for name, value in ms.items():
        print(f"{name:>15}: {value:6.2f} ms per commit (median of {args.commits}, interleaved)")
    old, new = ms["per level"] - ms["empty"], ms["one per family"] - ms["empty"]
    print(
        f"rollups alone: per level {old:.2f} ms, one per family {new:.2f} ms, ratio {new / old:.2f}"
    )
    before = stored["stored p-columns"] - stored["empty"]
    print(
        f"one per family with the generated p-columns of 0019: {before:.2f} ms alone; "
        f"without (0020): {new:.2f} ms, ratio {new / before:.2f}"
    )


if __name__ == "__main__":
    main()

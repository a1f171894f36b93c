"""Rollups benchmark: overviews from the rollups against raw spans, and what rollups cost ingest.

    .venv/bin/python bench/rollups.py [--spans 10000000 --orgs 50 --days 30] [--quick]

In one run, on one embedded PostgreSQL (PostgreSQL engine, fsync on):
1. load: ``--spans`` synthetic agent spans over the last ``--days`` days across ``--orgs``
   orgs of skewed sizes (bench/_rollup_load.py), written through the product's
   ``IngestWriter`` with rollups maintained at ingest (several batches in flight, so
   group commit merges them); then VACUUM ANALYZE;
2. queries: the org overview (requests, error rate and p95 duration per hour over the
   period, as the tenant reads it through ``act_as``) and the staff global overview (the
   same over all orgs, as ``aeos_staff``), each from the 1 h rollups and from raw spans,
   warm, a random org each time; the answers must agree (counts and errors exactly, p95
   within the histograms' 1 %), for every org and globally, or the run fails;
3. ingest cost: a fresh database and two ``aeos serve`` processes on it, one maintaining
   rollups at ingest and one not (``AEOS_RECEIVER_ROLLUPS_AT_INGEST``), driven in turn
   with the same OTLP/gRPC requests as bench/ingest.py (on, off, off, on, ...); and the
   same comparison for the load's own shape, spans spread over the whole period, through
   the IngestWriter alone (bench/_rollup_ingest_cost.py).
Prints a table and, last, a one-line JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import URL

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _rollup_load as synth  # noqa: E402
from bench._rollup_ingest_cost import (  # noqa: E402
    IngestCost,
    measure_backfill_cost,
    measure_ingest_cost,
)
from storage.embedded import EmbeddedPostgres, free_port  # noqa: E402
from storage.tenancy import DbRole, Scope, act_as  # noqa: E402

#: Server settings besides the defaults (fsync and synchronous_commit stay on). work_mem
#: lets the raw queries sort in memory: it helps the raw side, never the rollups.
SERVER_SETTINGS = {"shared_buffers": "2GB", "work_mem": "64MB", "max_wal_size": "4GB"}
TARGETS = {"org_rollups_p95_ms": 25.0, "global_rollups_p95_ms": 100.0, "speedup": 100.0,
           "ingest_cost": 0.25}  # fmt: skip
P95_TOLERANCE = 0.01 + 1e-9  # storage.hist.RELATIVE_ERROR
HOUR = "date_bin('1 hour', start_time, TIMESTAMPTZ '2000-01-01 00:00+00')"

# The queries, each answering (bucket, requests, errors, error rate, p95 duration ms). The
# p95 of a rollup row, as the views and the API rank it on both engines (PostgreSQL's
# tables store no p-columns since migration 0020).
P95 = "aeos_hist_quantile_n(duration_hist, span_count, 0.95)"
ORG_ROLLUPS = (
    f"SELECT bucket, span_count, error_count, error_count::float8 / span_count, {P95} "
    "FROM org_red_1h WHERE org_id = %s AND bucket >= %s ORDER BY bucket"
)
GLOBAL_ROLLUPS = (
    f"SELECT bucket, span_count, error_count, error_count::float8 / span_count, {P95} "
    "FROM platform_red_1h WHERE bucket >= %s ORDER BY bucket"
)
_RAW_MEASURES = (
    "count(*), count(*) FILTER (WHERE status_code = 2), "
    "(count(*) FILTER (WHERE status_code = 2))::float8 / count(*), "
    "percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms)"
)
ORG_RAW = (
    f"SELECT {HOUR} AS bucket, {_RAW_MEASURES} FROM spans "
    "WHERE org_id = %s AND start_time >= %s GROUP BY 1 ORDER BY 1"
)
GLOBAL_RAW = f"SELECT {HOUR} AS bucket, {_RAW_MEASURES} FROM spans WHERE start_time >= %s GROUP BY 1 ORDER BY 1"
# The agreement check of every org at once: (org, bucket, requests, errors, p95).
ALL_ORGS_ROLLUPS = (
    f"SELECT org_id, bucket, span_count, error_count, {P95} FROM org_red_1h WHERE bucket >= %s"
)
ALL_ORGS_RAW = (
    f"SELECT org_id, {HOUR}, count(*), count(*) FILTER (WHERE status_code = 2), "
    "percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) FROM spans "
    "WHERE start_time >= %s GROUP BY 1, 2"
)
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Latency:
    """Wall-clock times of one query's runs, in milliseconds."""

    runs: list[float]

    def pct(self, q: float) -> float:
        """Nearest-rank percentile ``q`` (0..1)."""
        ordered = sorted(self.runs)
        return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]

    def summary(self) -> dict[str, float]:
        """p50, p95 and max, rounded to 0.01 ms."""
        return {k: round(v, 2) for k, v in
                (("p50", self.pct(0.5)), ("p95", self.pct(0.95)), ("max", max(self.runs)))}  # fmt: skip


@dataclass
class Agreement:
    """Rollup answers compared with raw answers."""

    buckets: int = 0
    max_p95_rel_diff: float = 0.0
    problems: list[str] | None = None

    def compare(self, what: str, rollup: dict[Any, tuple[Any, ...]], raw: dict[Any, tuple[Any, ...]]) -> None:  # fmt: skip
        """Records every disagreement between two {key: (count, errors, p95)} answers."""
        problems = self.problems = self.problems or []
        if rollup.keys() != raw.keys():
            only = sorted(rollup.keys() ^ raw.keys(), key=str)[:3]
            problems.append(f"{what}: buckets differ ({len(rollup)} vs {len(raw)}), e.g. {only}")
        for key in rollup.keys() & raw.keys():
            (count, errors, p95), (raw_count, raw_errors, raw_p95) = rollup[key], raw[key]
            self.buckets += 1
            diff = abs(p95 - raw_p95) / raw_p95 if raw_p95 else abs(p95)
            self.max_p95_rel_diff = max(self.max_p95_rel_diff, diff)
            if (count, errors) != (raw_count, raw_errors) or diff > P95_TOLERANCE:
                problems.append(f"{what} {key}: rollups {rollup[key]} raw {raw[key]}")


def _by_bucket(rows: Rows) -> dict[Any, tuple[Any, ...]]:
    return {r[0]: (r[1], r[2], r[4]) for r in rows}


def admin_conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def timed(engine: Engine, scope: Scope, sql: str, params: tuple[Any, ...]) -> tuple[float, Rows]:
    """(ms, rows) of one query in its own transaction acting as ``scope`` (as the API does);
    the clock covers the query and fetching its rows, not the role switch before it."""
    with engine.begin() as conn:
        act_as(conn, scope)
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        started = time.perf_counter()
        with raw.cursor() as cur:
            cur.execute(sql.encode(), params)
            rows = cur.fetchall()
        return (time.perf_counter() - started) * 1000, rows


@dataclass
class QueryResults:
    """Latencies of the four queries, and the agreement of their answers."""

    latencies: dict[str, Latency]
    agreement: Agreement


def run_queries(engine: Engine, orgs: list[uuid.UUID], since: datetime, rollup_runs: int,
                raw_runs: int, rng: random.Random) -> QueryResults:  # fmt: skip
    """Times the four queries (one warm-up run each first) and checks their answers."""
    staff = Scope(DbRole.STAFF)

    def org_query(sql: str) -> Callable[[], tuple[float, Rows, Any]]:
        def run() -> tuple[float, Rows, Any]:
            org = rng.choice(orgs)
            return (*timed(engine, Scope(DbRole.TENANT, org), sql, (org, since)), org)

        return run

    def global_query(sql: str) -> Callable[[], tuple[float, Rows, Any]]:
        return lambda: (*timed(engine, staff, sql, (since,)), None)

    plan = {
        "org_rollups": (org_query(ORG_ROLLUPS), rollup_runs),
        "global_rollups": (global_query(GLOBAL_ROLLUPS), rollup_runs),
        "org_raw": (org_query(ORG_RAW), raw_runs),
        "global_raw": (global_query(GLOBAL_RAW), raw_runs),
    }
    latencies: dict[str, Latency] = {}
    answers: dict[str, list[tuple[Any, Rows]]] = {}
    for name, (run, runs) in plan.items():
        run()  # warm-up
        results = [run() for _ in range(runs)]
        latencies[name] = Latency([ms for ms, _, _ in results])
        answers[name] = [(org, rows) for _, rows, org in results]
        print(f"  {name}: {latencies[name].summary()} ms over {runs} runs", flush=True)
    return QueryResults(latencies, check_agreement(engine, answers, since))


def check_agreement(engine: Engine, answers: dict[str, list[tuple[Any, Rows]]],
                    since: datetime) -> Agreement:  # fmt: skip
    """Rollups against raw: the timed raw answers, then every org at once (one scan)."""
    agreement = Agreement()
    staff = Scope(DbRole.STAFF)
    for org, rows in answers["org_raw"]:
        _, rollup = timed(engine, Scope(DbRole.TENANT, org), ORG_ROLLUPS, (org, since))
        agreement.compare(f"org {org}", _by_bucket(rollup), _by_bucket(rows))
    _, rollup = timed(engine, staff, GLOBAL_ROLLUPS, (since,))
    agreement.compare("global", _by_bucket(rollup), _by_bucket(answers["global_raw"][-1][1]))
    _, rollup = timed(engine, staff, ALL_ORGS_ROLLUPS, (since,))
    _, raw = timed(engine, staff, ALL_ORGS_RAW, (since,))
    agreement.compare("all orgs", {(r[0], r[1]): r[2:] for r in rollup},
                      {(r[0], r[1]): r[2:] for r in raw})  # fmt: skip
    return agreement


def table_sizes(conninfo: str) -> dict[str, tuple[int, int]]:
    """(rows, bytes with indexes) of the raw spans and the overview rollup tables."""
    names = ["spans", "span_red_1m", "span_red_1h", "org_red_1h", "platform_red_1h"]
    out: dict[str, tuple[int, int]] = {}
    with psycopg.connect(conninfo) as conn:
        for name in names:
            count = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
            size = conn.execute(
                "SELECT sum(pg_total_relation_size(c)) FROM (SELECT %s::regclass AS c UNION ALL "
                "SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass) AS t",
                (name, name),
            ).fetchone()
            out[name] = (int(count[0]) if count else 0, int(size[0] or 0) if size else 0)
    return out


@dataclass
class Results:
    """Everything one run measured."""

    args: argparse.Namespace
    load: tuple[int, float, float]  # spans stored, seconds, seconds generating rows
    vacuum_s: float
    sizes: dict[str, tuple[int, int]]
    queries: QueryResults
    ingest: IngestCost | None
    backfill: IngestCost | None
    server: str


def run(pg: EmbeddedPostgres, tmp: Path, args: argparse.Namespace) -> Results:
    """Load, query, then ingest cost (see the module docstring)."""
    now = datetime.now(UTC)
    since = (now - timedelta(days=args.days)).replace(minute=0, second=0, microsecond=0)
    url = pg.ensure_database("bench_rollups")
    world = synth.new_world(url, args.orgs, args.spans, since, now - timedelta(minutes=1),
                            args.batch_spans)  # fmt: skip
    db, org_ids = world.db, [o.org_id for o in world.orgs]
    print(f"load: {args.spans:,} spans in {len(world.specs):,} batches of up to "
          f"{args.batch_spans:,} spans, {args.concurrency} in flight; org sizes "
          f"{world.orgs[0].spans:,} .. {world.orgs[-1].spans:,} spans", flush=True)  # fmt: skip
    loaded = asyncio.run(synth.load(db.app_conninfo(), world, args.concurrency, args.seed,
                                    progress_every_s=60.0))  # fmt: skip
    if loaded[0] != args.spans:
        raise SystemExit(f"FAILED: {loaded[0]} spans stored of {args.spans}")
    conninfo = admin_conninfo(url)
    started = time.monotonic()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        version = conn.execute("SHOW server_version").fetchone()
    vacuum_s = time.monotonic() - started
    sizes = table_sizes(conninfo)
    print(f"queries (VACUUM ANALYZE took {vacuum_s:.0f}s):", flush=True)
    queries = run_queries(db.app_engine(pool_size=2), org_ids, since, args.rollup_runs,
                          args.raw_runs, random.Random(args.seed))  # fmt: skip
    db.close()
    ingest = backfill = None
    if args.ingest_rounds:
        print("ingest cost, end to end:", flush=True)
        ingest = measure_ingest_cost(pg, tmp, args.ingest_rounds, args.ingest_seconds,
                                     args.spans_per_request, args.ingest_concurrency)  # fmt: skip
    if args.backfill_rounds:
        print("ingest cost, backfill-shaped:", flush=True)
        backfill = measure_backfill_cost(pg, args.backfill_rounds, args.backfill_spans, args.orgs,
                                         args.days, args.batch_spans, args.concurrency, args.seed)  # fmt: skip
    server = version[0] if version else "?"
    return Results(args, loaded, vacuum_s, sizes, queries, ingest, backfill, server)


def summary(r: Results) -> dict[str, Any]:
    """The JSON summary (latencies in ms, rates in spans/s, cost and differences as ratios)."""
    lat = {k: v.summary() for k, v in r.queries.latencies.items()}
    out: dict[str, Any] = {
        "spans": r.args.spans, "orgs": r.args.orgs, "days": r.args.days,
        "load_spans_per_s": round(r.load[0] / r.load[1]),
        "latency_ms": lat,
        "speedup": {
            scope: {"raw_p50_over_rollups_p95": round(lat[f"{scope}_raw"]["p50"] / lat[f"{scope}_rollups"]["p95"], 1),
                    "raw_p50_over_rollups_p50": round(lat[f"{scope}_raw"]["p50"] / lat[f"{scope}_rollups"]["p50"], 1)}
            for scope in ("org", "global")
        },
        "agreement": {"buckets": r.queries.agreement.buckets,
                      "max_p95_rel_diff": round(r.queries.agreement.max_p95_rel_diff, 5),
                      "ok": not r.queries.agreement.problems},
    }  # fmt: skip
    for key, cost in (("ingest", r.ingest), ("ingest_backfill_shaped", r.backfill)):
        if cost is not None:
            out[key] = {"rollups_on_spans_per_s": round(cost.rate(cost.on)),
                        "rollups_off_spans_per_s": round(cost.rate(cost.off)),
                        "cost": round(cost.cost, 4)}  # fmt: skip
    out["targets_met"] = _targets(out)
    return out


def _targets(s: dict[str, Any]) -> dict[str, bool]:
    lat, speed = s["latency_ms"], s["speedup"]
    met = {
        "org_rollups_p95_under_25ms": lat["org_rollups"]["p95"] < TARGETS["org_rollups_p95_ms"],
        "global_rollups_p95_under_100ms": lat["global_rollups"]["p95"] < TARGETS["global_rollups_p95_ms"],
        "org_100x_faster": speed["org"]["raw_p50_over_rollups_p95"] >= TARGETS["speedup"],
        "global_100x_faster": speed["global"]["raw_p50_over_rollups_p95"] >= TARGETS["speedup"],
    }  # fmt: skip
    if "ingest" in s:
        met["ingest_cost_under_25pct"] = s["ingest"]["cost"] < TARGETS["ingest_cost"]
    return met


def report(r: Results, s: dict[str, Any]) -> None:
    """The human-readable table; the JSON summary goes last, on one line."""
    stored, seconds, generating = r.load
    print(
        f"\n== rollups benchmark: {stored:,} spans, {r.args.orgs} orgs, {r.args.days} days; "
        f"PostgreSQL {r.server} (embedded, fsync on), {os.cpu_count()} cores shared =="
    )
    print(
        f"load through IngestWriter, rollups at ingest: {stored / seconds:,.0f} spans/s "
        f"({seconds:.0f}s, of which {generating:.0f}s building rows in the same process)"
    )
    for name, (rows, size) in r.sizes.items():
        print(f"  {name:<16} {rows:>12,} rows {size / 2**20:>10,.0f} MB")
    print(f"\n{'query':<44}{'runs':>6}{'p50 ms':>11}{'p95 ms':>11}{'max ms':>11}")
    labels = {"org_rollups": "org overview, rollups (org_red_1h, tenant)",
              "org_raw": "org overview, raw spans (tenant)",
              "global_rollups": "global overview, rollups (platform_red_1h)",
              "global_raw": "global overview, raw spans (staff)"}  # fmt: skip
    for name, label in labels.items():
        lat = s["latency_ms"][name]
        runs = len(r.queries.latencies[name].runs)
        print(f"{label:<44}{runs:>6}{lat['p50']:>11,.2f}{lat['p95']:>11,.2f}{lat['max']:>11,.2f}")
    for scope, v in s["speedup"].items():
        print(
            f"{scope} overview: raw p50 / rollups p95 = {v['raw_p50_over_rollups_p95']:,.1f}x; "
            f"raw p50 / rollups p50 = {v['raw_p50_over_rollups_p50']:,.1f}x"
        )
    a = r.queries.agreement
    print(f"agreement: {a.buckets:,} hourly buckets compared; counts and errors "
          f"{'equal' if not a.problems else 'DIFFER'}; max p95 relative difference "
          f"{a.max_p95_rel_diff:.3%} (bound 1 %)")  # fmt: skip
    if "ingest" in s:
        i = s["ingest"]
        print(f"ingest end to end (aeos serve x 2, OTLP/gRPC, {r.args.ingest_rounds} pairs of "
              f"{r.args.ingest_seconds:.0f}s runs): rollups on {i['rollups_on_spans_per_s']:,} "
              f"spans/s, off {i['rollups_off_spans_per_s']:,} spans/s; cost {i['cost']:.1%}")  # fmt: skip
    if "ingest_backfill_shaped" in s:
        b = s["ingest_backfill_shaped"]
        print(f"ingest backfill-shaped (IngestWriter, {r.args.backfill_spans:,} spans over "
              f"{r.args.days} days a run, {r.args.backfill_rounds} pairs): rollups on "
              f"{b['rollups_on_spans_per_s']:,} spans/s, off {b['rollups_off_spans_per_s']:,} "
              f"spans/s; cost {b['cost']:.1%}")  # fmt: skip
    print("targets: " + ", ".join(f"{k} {'MET' if v else 'NOT MET'}"
                                  for k, v in s["targets_met"].items()))  # fmt: skip
    print(json.dumps(s, separators=(",", ":")))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="a smoke run: 100k spans, few runs, short ingest")
    add("--spans", type=int, help="spans to load (default 10,000,000; --quick 100,000)")
    add("--orgs", type=int, default=50)
    add("--days", type=int, default=30)
    add("--batch-spans", type=int, default=5000, help="spans per batch (one org each)")
    add("--concurrency", type=int, default=8, help="batches in flight during the load")
    add("--rollup-runs", type=int, help="runs of each rollup query (default 50; --quick 10)")
    add("--raw-runs", type=int, help="runs of each raw query (default 7; --quick 2)")
    add("--ingest-rounds", type=int, help="pairs of ingest runs, 0 to skip (default 4; --quick 1)")
    add("--ingest-seconds", type=float, help="seconds per ingest run (default 20; --quick 3)")
    add("--ingest-concurrency", type=int, default=32)
    add(
        "--backfill-rounds",
        type=int,
        help="pairs of backfill-shaped loads, 0 to skip (default 2; --quick 1)",
    )
    add(
        "--backfill-spans",
        type=int,
        help="spans a backfill-shaped load (default 100,000; --quick 20,000)",
    )
    add("--spans-per-request", type=int, default=500)
    add("--seed", type=int, default=1)
    add("--data-dir", type=Path, help="where the server's files go (default: a temporary dir)")
    args = parser.parse_args(argv)
    defaults = {"spans": (10_000_000, 100_000), "rollup_runs": (50, 10), "raw_runs": (7, 2),
                "ingest_rounds": (4, 1), "ingest_seconds": (20.0, 3.0),
                "backfill_rounds": (2, 1), "backfill_spans": (100_000, 20_000)}  # fmt: skip
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aeos-bench-rollups-", dir=args.data_dir) as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), dict(SERVER_SETTINGS))
        pg.start()
        try:
            results = run(pg, Path(tmp), args)
        finally:
            pg.stop()
    s = summary(results)
    report(results, s)
    problems = list(results.queries.agreement.problems or [])
    for cost in (results.ingest, results.backfill):
        problems += cost.problems() if cost else []
    if problems:
        print(f"FAILED: {len(problems)} disagreements, e.g.\n  " + "\n  ".join(problems[:10]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Query API benchmark: the views over HTTP at 1 and 8 concurrent clients, and each view's
numbers from the rollups against the same numbers from raw rows.

    .venv/bin/python bench/api.py [--spans 10000000 --orgs 50 --days 30] [--quick]

In one run, on one embedded PostgreSQL (PostgreSQL engine, fsync on):
1. load: ``--spans`` spans over ``--days`` days across ``--orgs`` orgs through the real
   ingest writer (bench/_rollup_load.py, the dataset of bench/rollups.py), plus task runs
   (one per 100 spans of an org, over the same period); VACUUM ANALYZE;
2. HTTP: the query API in its own process (bench/_api_server.py); for each view, requests
   at 1 client and at 8 concurrent clients: p50 / p95 latency and requests/s. Views: the
   org overview and the agent list (largest org, member key), a 30-day hourly
   ``/v1/query`` series, a task-run search, the staff global overview (30 days) and the
   org explorer (support key);
3. rollups against raw: for the largest org (and all orgs for the staff views), each
   view's numbers from the readers (rollups) and from raw spans in SQL, timed in the same
   run; the counts must agree exactly and p95 within 1 %, or the run fails. The ratio is
   raw p50 / rollups p95.
Prints a table and, last, a one-line JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _rollup_load as synth  # noqa: E402
from bench._api_raw import RAW_VIEWS, compare  # noqa: E402
from storage import admin  # noqa: E402
from storage.embedded import EmbeddedPostgres, free_port  # noqa: E402

SERVER_SETTINGS = {"shared_buffers": "2GB", "work_mem": "64MB", "max_wal_size": "4GB"}
TARGET_P95_MS = 100.0
TARGET_RATIO = 50.0
DAY = timedelta(days=1)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0..1)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def add_task_runs(
    conn: psycopg.Connection[Any], orgs: list[synth.Org], since: datetime, until: datetime
) -> int:
    """One task run per 100 spans of each org, spread over the period; 200 titled tasks."""
    total = 0
    for org in orgs:
        n = max(org.spans // 100, 10)
        conn.execute(
            "INSERT INTO tasks (org_id, task_id, title) SELECT %s, 'task-' || g, "
            "'Summarise report ' || g FROM generate_series(0, 199) g",
            [org.org_id],
        )
        conn.execute(
            "INSERT INTO task_runs (org_id, task_run_id, task_id, agent_id, status, started_at,"
            " ended_at, duration_ms, cost_usd) SELECT %(o)s, 'run-' || g, 'task-' || (g %% 200),"
            " 'agent-' || (g %% 8), (ARRAY['succeeded','failed','running','canceled','queued'])"
            "[1 + g %% 5], t, t + d * interval '1 millisecond', d, round((g %% 997) / 300.0, 4)"
            " FROM (SELECT g, %(s)s + (%(w)s * ((g * 7919) %% 100000) / 100000.0) AS t,"
            " 50 + (g * 104729) %% 60000 AS d FROM generate_series(1, %(n)s) g) x",
            {"o": org.org_id, "s": since, "w": until - since, "n": n},
        )
        total += n
    return total


def views(now: datetime, org: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each benchmarked view: (path, query parameters)."""
    month = {"start": (now - 30 * DAY).isoformat(), "end": now.isoformat()}
    return {
        "org_overview": ("/v1/overview", {}),
        "query_30d_hourly": (
            "/v1/query",
            {
                "family": "org_red",
                "measure": ["sum(spans)", "sum(errors)", "p95(duration_ms)"],
                "step": "1h",
                **month,
            },
        ),
        "task_run_search": (
            "/v1/task-runs",
            {
                "status": ["failed", "succeeded"],
                "sort": "duration",
                "q": "report 1",
                "limit": 50,
                **month,
            },
        ),
        "agent_list": ("/v1/agents", {}),
        "staff_global_overview": ("/v1/staff/overview", month),
        "staff_org_explorer": ("/v1/staff/org-explorer", {"sort": "health"}),
    }


def hammer(
    base: str, key: str, path: str, params: dict[str, Any], clients: int, requests: int
) -> dict[str, float]:
    """``requests`` GETs split over ``clients`` threads: p50 / p95 ms and requests/s."""
    times: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client(n: int) -> None:
        with httpx.Client(
            base_url=base, timeout=120, headers={"Authorization": f"Bearer {key}"}
        ) as c:
            for _ in range(n):
                t0 = time.perf_counter()
                r = c.get(path, params=params)
                dt = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    errors.append(f"{path}: {r.status_code} {r.text[:200]}")
                with lock:
                    times.append(dt)

    threads = [threading.Thread(target=client, args=(requests // clients,)) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"FAILED: {errors[0]}")
    return {
        "p50_ms": round(pct(times, 0.5), 2),
        "p95_ms": round(pct(times, 0.95), 2),
        "rps": round(len(times) / wall, 1),
    }


def start_api(url: str) -> tuple[subprocess.Popen[bytes], str]:
    """The API in its own process; waits until it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "_api_server.py"), url, str(port)]
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("FAILED: the API did not start")


def run(pg: EmbeddedPostgres, args: argparse.Namespace) -> dict[str, Any]:
    """Load, HTTP, rollups against raw (see the module docstring)."""
    now = datetime.now(UTC)
    since = (now - timedelta(days=args.days)).replace(minute=0, second=0, microsecond=0)
    url = pg.ensure_database("bench_api")
    world = synth.new_world(url, args.orgs, args.spans, since, now - timedelta(minutes=1), 2000)
    print(
        f"load: {args.spans:,} spans over {args.days} days across {args.orgs} orgs "
        f"(largest {world.orgs[0].spans:,})",
        flush=True,
    )
    t0 = time.monotonic()
    stored, _, _ = asyncio.run(
        synth.load(world.db.app_conninfo(), world, 4, args.seed, progress_every_s=60.0)
    )
    if stored != args.spans:
        raise SystemExit(f"FAILED: {stored} spans stored of {args.spans}")
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        runs = add_task_runs(conn, world.orgs, since, now)
        conn.execute("VACUUM (ANALYZE)")
    load_s = time.monotonic() - t0
    print(f"  loaded in {load_s:.0f}s; {runs:,} task runs", flush=True)
    largest = world.orgs[0].org_id
    with world.db.admin_engine().begin() as conn:
        member = admin.create_key(conn, "bench-00", "member", "bench").plaintext
        admin.create_org(conn, "alias", "enterprise")
        staff = admin.create_key(conn, "alias", "alias_support", "bench").plaintext
    proc, base = start_api(url.render_as_string(hide_password=False))
    http: dict[str, dict[str, Any]] = {}
    try:
        for name, (path, params) in views(datetime.now(UTC), str(largest)).items():
            key = staff if path.startswith("/v1/staff") else member
            hammer(base, key, path, params, 1, 3)  # warm
            http[name] = {
                "c1": hammer(base, key, path, params, 1, args.requests),
                "c8": hammer(base, key, path, params, 8, args.requests * 4),
            }
            print(
                f"  {name:24s} 1 client p50/p95 {http[name]['c1']['p50_ms']:8.1f} / "
                f"{http[name]['c1']['p95_ms']:8.1f} ms {http[name]['c1']['rps']:7.1f}/s | 8 clients "
                f"{http[name]['c8']['p50_ms']:8.1f} / {http[name]['c8']['p95_ms']:8.1f} ms "
                f"{http[name]['c8']['rps']:7.1f}/s",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    engine: Engine = world.db.app_engine()
    ratios, problems = compare(
        engine, largest, datetime.now(UTC), RAW_VIEWS, args.raw_runs, args.rollup_runs
    )
    for name, r in ratios.items():
        print(
            f"  {name:24s} rollups p95 {r['rollups_p95_ms']:8.2f} ms, raw p50 "
            f"{r['raw_p50_ms']:10.1f} ms: {r['ratio']:,.0f}x",
            flush=True,
        )
    return {
        "spans": args.spans,
        "orgs": args.orgs,
        "days": args.days,
        "task_runs": runs,
        "largest_org_spans": world.orgs[0].spans,
        "load_s": round(load_s),
        "http": http,
        "rollups_vs_raw": ratios,
        "problems": problems,
        "targets": {
            "p95_under_100ms_at_8": all(v["c8"]["p95_ms"] < TARGET_P95_MS for v in http.values()),
            "ratio_at_least_50": all(r["ratio"] >= TARGET_RATIO for r in ratios.values()),
        },
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spans", type=int, default=10_000_000)
    p.add_argument("--orgs", type=int, default=50)
    p.add_argument("--days", type=int, default=30)
    p.add_argument(
        "--requests", type=int, default=40, help="requests per view at 1 client (x4 at 8)"
    )
    p.add_argument("--raw-runs", type=int, default=3)
    p.add_argument("--rollup-runs", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="where the temporary server lives")
    p.add_argument("--quick", action="store_true", help="a smoke run: 20,000 spans, 5 orgs")
    args = p.parse_args(argv)
    if args.quick:
        args.spans, args.orgs, args.requests, args.raw_runs, args.rollup_runs = 20_000, 5, 8, 1, 3
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aeos-bench-api-", dir=args.data_dir) as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), dict(SERVER_SETTINGS))
        pg.start()
        try:
            result = run(pg, args)
        finally:
            pg.stop()
    print(json.dumps(result, default=str))
    if result["problems"]:
        print(f"FAILED: {len(result['problems'])} disagreements, e.g. {result['problems'][:5]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Dashboard benchmark: every panel query over 24 h, 7 d, 30 d and 90 d, p95 per panel.

    .venv/bin/python bench/dashboards.py [--spans 1000000 --orgs 10 --days 90] [--runs 10]

On one embedded PostgreSQL (PostgreSQL engine, rollups at ingest): loads the bench/rollups
dataset (bench/_rollup_load.py: synthetic agent spans through the product's
IngestWriter) plus, per agent, a heartbeat and a queue-depth point every hour and an LLM
call every ``--llm-every`` spans' worth of time, so that every panel has rows; VACUUM
ANALYZE; then creates the Grafana logins ``aeos grafana provision`` creates and runs
every panel query of every dashboard, expanded as Grafana expands it
(``dashboards_json._gen.macros``), ``--runs`` times per range, warm: client and subsystem
dashboards as the largest org's pinned login, the console as the staff login. The
interval of each range is the one Grafana picks for a panel about 1,000 px wide. Prints
p95 per panel and range, the slowest three, how many miss the 200 ms target, and last a
one-line JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _rollup_load as synth  # noqa: E402
from dashboards_json._gen import build_all  # noqa: E402
from dashboards_json._gen.macros import Request, expand  # noqa: E402
from storage import grafana  # noqa: E402
from storage.embedded import EmbeddedPostgres, free_port  # noqa: E402
from storage.ingest.rows import Batch, EventRow, LlmCall, MetricPointRow  # noqa: E402
from storage.ingest.writer import IngestWriter  # noqa: E402

SERVER_SETTINGS = {"shared_buffers": "1GB", "work_mem": "64MB", "max_wal_size": "4GB"}
TARGET_P95_MS = 200.0
# Range -> the interval Grafana picks for it (range / ~1000 points, rounded as Grafana does).
RANGES = {
    "24h": (timedelta(hours=24), 60_000),
    "7d": (timedelta(days=7), 600_000),
    "30d": (timedelta(days=30), 1_800_000),
    "90d": (timedelta(days=90), 7_200_000),
}
HOUR_NS = 3600 * 10**9


def _extras(org: synth.Org, since_ns: int, until_ns: int, llm_every_s: int) -> list[Batch]:
    """Heartbeats, queue depth and LLM calls of one org, a day per batch."""
    batches: list[Batch] = []
    agents = [a.agent_id for a in org.agents]
    day_ns = 24 * HOUR_NS
    for day in range(since_ns, until_ns, day_ns):
        batch = Batch(org.org_id)
        for hour in range(day, min(day + day_ns, until_ns), HOUR_NS):
            for i, agent in enumerate(agents):
                key = f"{org.org_id}/{agent}/{hour}".encode()
                batch.events.append(EventRow(
                    event_id=uuid.uuid5(uuid.NAMESPACE_OID, key.decode()).bytes, time_ns=hour,
                    observed_ns=None, severity="info", severity_number=9, subsystem="DAMN",
                    event_type="damn.agent.heartbeat", agent_id=agent, fleet_id=None,
                    task_run_id=None, trace_id=None, span_id=None, service_name=None,
                    message=None, payload={"damn.agent.status": "online"}, resource_attributes={},
                ))  # fmt: skip
                batch.metric_points.append(MetricPointRow(
                    metric="damn.queue.depth", series_id=uuid.uuid5(uuid.NAMESPACE_OID, agent).bytes,
                    time_ns=hour, start_ns=None, kind="gauge", temporality=0, is_monotonic=False,
                    unit="{item}", subsystem="DAMN", service_name=None, agent_id=agent,
                    attributes={}, resource_attributes={}, value=float((hour // HOUR_NS + i) % 17),
                ))  # fmt: skip
        for t in range(day, min(day + day_ns, until_ns), llm_every_s * 10**9):
            n = t // 10**9
            batch.llm_calls.append(LlmCall(
                uuid.uuid5(uuid.NAMESPACE_OID, f"{org.org_id}/{n}").bytes, n.to_bytes(8, "big"),
                t, None, agents[n % len(agents)], "MOSAIC", "openai",
                ("gpt-4o", "gpt-4o-mini")[n % 2], 1000 + n % 3000, 200 + n % 700, 0, 0, None,
            ))  # fmt: skip
        batches.append(batch)
    return batches


async def _write(conninfo: str, batches: list[Batch]) -> None:
    writer = IngestWriter(conninfo)
    await writer.start()
    try:
        for i in range(0, len(batches), 8):
            await asyncio.gather(*(writer.write(b) for b in batches[i : i + 8]))
    finally:
        await writer.close()


def _login_conninfo(url: Any, login: grafana.GrafanaLogin) -> str:
    rendered: str = url.set(
        drivername="postgresql", username=login.role, password=login.password
    ).render_as_string(hide_password=False)
    return rendered


def _values(board: dict[str, Any], org: uuid.UUID) -> dict[str, list[str] | None]:
    out: dict[str, list[str] | None] = {}
    for var in board["templating"]["list"]:
        if var["name"] == "org":
            out["org"] = [str(org)]
        elif var["type"] == "textbox":
            out[var["name"]] = [""]
        else:
            out[var["name"]] = None
    return out


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.95 * len(ordered)), 1) - 1]


def time_panels(conninfo: str, boards: dict[str, dict[str, Any]], org: uuid.UUID,
                now: datetime, runs: int) -> list[dict[str, Any]]:  # fmt: skip
    """p95 (ms) of each panel query per range; the clock covers the query and its rows."""
    results: list[dict[str, Any]] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for path, board in boards.items():
            variables = board["templating"]["list"]
            for panel in board["panels"]:
                for target in panel.get("targets", []):
                    if "rawSql" not in target:
                        continue
                    for name, (span, interval) in RANGES.items():
                        request = Request(now - span, now, interval, _values(board, org))
                        query = expand(target["rawSql"], variables, request)
                        samples = []
                        for _ in range(runs + 1):  # the first run warms the cache
                            started = time.perf_counter()
                            rows = conn.execute(query).fetchall()
                            samples.append((time.perf_counter() - started) * 1000)
                        results.append({"dashboard": path, "panel": panel["title"],
                                        "ref": target["refId"], "range": name,
                                        "p95_ms": round(_p95(samples[1:]), 2),
                                        "rows": len(rows)})  # fmt: skip
    return results


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    pg = EmbeddedPostgres(tmp / "pg", free_port(), dict(SERVER_SETTINGS))
    pg.start()
    try:
        return _run(pg, args)
    finally:
        pg.stop()


def _run(pg: EmbeddedPostgres, args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    since = (now - timedelta(days=args.days)).replace(minute=0)
    url = pg.ensure_database("bench_dashboards")
    world = synth.new_world(url, args.orgs, args.spans, since, now - timedelta(minutes=1),
                            args.batch_spans)  # fmt: skip
    started = time.monotonic()
    stored, _, _ = asyncio.run(synth.load(world.db.app_conninfo(), world, 8, args.seed))
    since_ns, until_ns = int(since.timestamp()) * 10**9, int(now.timestamp()) * 10**9
    extras = [b for o in world.orgs for b in _extras(o, since_ns, until_ns, args.llm_every)]
    asyncio.run(_write(world.db.app_conninfo(), extras))
    load_s = time.monotonic() - started
    admin_info = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_info, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    largest = max(world.orgs, key=lambda o: o.spans)
    with world.db.admin_engine().begin() as conn:
        name = conn.exec_driver_sql("SELECT name FROM orgs WHERE id = %s", (largest.org_id,))
        tenant = grafana.provision_org_login(conn, name.scalar_one())
        staff = grafana.provision_staff_login(conn)
    boards = build_all()
    client = {p: b for p, b in boards.items() if not p.startswith("console/")}
    console = {p: b for p, b in boards.items() if p.startswith("console/")}
    print(f"loaded {stored:,} spans and {len(extras):,} extra batches in {load_s:.0f}s; "
          f"timing {sum(len(b['panels']) for b in boards.values())} panels x 4 ranges x "
          f"{args.runs} runs", flush=True)  # fmt: skip
    results = time_panels(_login_conninfo(url, tenant), client, largest.org_id, now, args.runs)
    results += time_panels(_login_conninfo(url, staff), console, largest.org_id, now, args.runs)
    world.db.close()
    return {"spans": stored, "orgs": args.orgs, "days": args.days, "runs": args.runs,
            "largest_org_spans": largest.spans, "load_s": round(load_s, 1),
            "results": results}  # fmt: skip


def report(summary: dict[str, Any]) -> None:
    results = summary["results"]
    print(f"{'dashboard':34} {'panel':40} " + " ".join(f"{r:>8}" for r in RANGES))
    keyed: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in results:
        keyed.setdefault((r["dashboard"], r["panel"], r["ref"]), {})[r["range"]] = r["p95_ms"]
    for (path, panel, _), by_range in keyed.items():
        print(f"{path:34} {panel[:40]:40} " + " ".join(f"{by_range[r]:8.1f}" for r in RANGES))
    slowest = sorted(results, key=lambda r: r["p95_ms"], reverse=True)[:3]
    over = [r for r in results if r["p95_ms"] > TARGET_P95_MS]
    print(
        "slowest three (p95): "
        + "; ".join(
            f"{r['dashboard']} / {r['panel']} @ {r['range']}: {r['p95_ms']:.1f} ms" for r in slowest
        )
    )
    print(f"over the {TARGET_P95_MS:.0f} ms target: {len(over)} of {len(results)}")
    line = {k: v for k, v in summary.items() if k != "results"}
    line |= {"slowest": slowest, "over_target": len(over), "queries": len(results),
             "max_p95_ms": slowest[0]["p95_ms"] if slowest else None}  # fmt: skip
    print(json.dumps(line, separators=(",", ":")))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--spans", type=int, default=1_000_000, help="spans to load (the dataset's size)")
    add("--orgs", type=int, default=10)
    add("--days", type=int, default=90, help="the period the data covers (90 for the 90 d range)")
    add("--batch-spans", type=int, default=5000)
    add("--llm-every", type=int, default=300, help="seconds between LLM calls per org")
    add("--runs", type=int, default=10, help="timed runs of each query per range")
    add("--seed", type=int, default=1)
    add("--data-dir", type=Path, help="where the server's files go (default: a temporary dir)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aeos-bench-dash-", dir=args.data_dir) as tmp:
        summary = run(args, Path(tmp))
    report(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

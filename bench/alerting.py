"""Alerting benchmark: one evaluation cycle of N rules across 100 orgs, on the rollups.

    .venv/bin/python bench/alerting.py [--spans 300000 --orgs 100 --days 2]
                                       [--rules 1000,5000,10000]

On one embedded PostgreSQL (PostgreSQL engine, fsync on): the ``bench/rollups`` dataset
(``--spans`` synthetic agent spans over ``--days`` days across ``--orgs`` orgs of skewed
sizes, written through the product's IngestWriter with rollups maintained at ingest),
then for each rule count a fresh rule set spread evenly over the orgs, in a fixed mix
per org (of every 10 rules: 4 threshold — error rate per agent, p95 latency, span count
per service, error count per operation; 2 heartbeat — silent agents, fleet offline
share; 2 budget — day and month; 2 anomaly — span count and p95, daily seasonality), all
due at once, and one ``run_cycle`` timed end to end (claims, tenant reads, states,
evaluations, notifications). The cycle's cost depends on rules and rollup rows, not on
the raw span volume. Prints a table and, last, a one-line JSON summary. Target: 1,000
rules in under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerting.cycle import CycleSettings, run_cycle  # noqa: E402
from bench import _rollup_load as synth  # noqa: E402
from storage import DbRole, Scope, scoped_transaction  # noqa: E402
from storage.alerts.rules import create_rule  # noqa: E402
from storage.alerts.spec import RuleSpec  # noqa: E402
from storage.embedded import EmbeddedPostgres, free_port  # noqa: E402

SERVER_SETTINGS = {"shared_buffers": "1GB", "work_mem": "16MB", "max_wal_size": "4GB"}
TARGET_1000_S = 5.0

MIX: tuple[dict[str, Any], ...] = (
    {"type": "threshold", "for_s": 120,
     "params": {"measure": "error_rate", "group_by": ["agent_id"], "value": 0.05, "min_spans": 10}},
    {"type": "threshold", "params": {"measure": "p95_latency_ms", "value": 2000}},
    {"type": "threshold",
     "params": {"measure": "span_count", "group_by": ["service_name"], "op": "lt", "value": 1}},
    {"type": "threshold",
     "params": {"measure": "error_count", "group_by": ["operation"], "value": 50,
                "window_s": 900}},
    {"type": "heartbeat", "params": {"target": "agent", "silent_for_s": 600}},
    {"type": "heartbeat", "params": {"target": "fleet_offline", "offline_pct": 50}},
    {"type": "budget", "params": {"period": "day", "amount_usd": 50}},
    {"type": "budget", "params": {"period": "month", "amount_usd": 1000}},
    {"type": "anomaly", "params": {"measure": "span_count", "seasonality": "daily"}},
    {"type": "anomaly", "params": {"measure": "p95_latency_ms", "seasonality": "daily"}},
)  # fmt: skip


def add_rules(engine: Engine, orgs: list[uuid.UUID], count: int) -> None:
    """Replaces every rule with ``count`` rules spread over ``orgs`` (the mix above)."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE alert_rules, alert_groups CASCADE"))
        conn.execute(text("TRUNCATE alert_evaluations"))
    per_org = count // len(orgs)
    for org in orgs:
        with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
            for i in range(per_org):
                spec = {"name": f"rule {i}", **MIX[i % len(MIX)]}
                create_rule(conn, org, RuleSpec.model_validate(spec))


def time_cycle(app: Engine, now: datetime) -> tuple[float, dict[str, Any]]:
    """One cycle at ``now``, timed."""
    started = time.perf_counter()
    summary = run_cycle(app, now, CycleSettings(batch_size=200))
    return time.perf_counter() - started, summary.as_dict()


def run(pg: EmbeddedPostgres, args: argparse.Namespace) -> dict[str, Any]:
    """Load the dataset, then time one cycle per rule count."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    since = (now - timedelta(days=args.days)).replace(minute=0)
    url = pg.ensure_database("bench_alerting")
    world = synth.new_world(url, args.orgs, args.spans, since, now - timedelta(minutes=1),
                            args.batch_spans)  # fmt: skip
    started = time.monotonic()
    stored, _, _ = asyncio.run(synth.load(world.db.app_conninfo(), world, 4, 1))
    load_s = time.monotonic() - started
    print(f"load: {stored:,} spans across {args.orgs} orgs in {load_s:.0f}s", flush=True)
    admin, app = world.db.admin_engine(), world.db.app_engine(pool_size=4)
    with admin.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    orgs = [o.org_id for o in world.orgs]
    cycles = []
    for count in args.rules:
        add_rules(admin, orgs, count)
        seconds, summary = time_cycle(app, now)
        again, _ = time_cycle(app, now + timedelta(minutes=1))  # states exist: steady state
        cycles.append({"rules": summary["rules"], "first_cycle_s": round(seconds, 2),
                       "steady_cycle_s": round(again, 2), "by_state": summary["by_state"],
                       "errors": summary["errors"]})  # fmt: skip
        print(f"  {summary['rules']:>6,} rules: first cycle {seconds:6.2f}s, next {again:6.2f}s "
              f"({summary['rules'] / again:,.0f} rules/s), errors {summary['errors']}, "
              f"states {dict(summary['by_state'])}", flush=True)  # fmt: skip
    world.db.close()
    first = next((c for c in cycles if c["rules"] == 1000), None)
    return {
        "spans": stored,
        "orgs": args.orgs,
        "load_s": round(load_s, 1),
        "cycles": cycles,
        "target_1000_rules_s": TARGET_1000_S,
        "target_met": None if first is None else max(first["first_cycle_s"],
                                                     first["steady_cycle_s"]) < TARGET_1000_S,
    }  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spans", type=int, default=300_000)
    p.add_argument("--orgs", type=int, default=100)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--batch-spans", type=int, default=2000)
    p.add_argument("--rules", type=lambda s: [int(x) for x in s.split(",")],
                   default=[1000, 5000, 10000])  # fmt: skip
    p.add_argument("--data-dir", default=None, help="Where the embedded server's files go.")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aeos-bench-alerting-", dir=args.data_dir) as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), dict(SERVER_SETTINGS))
        pg.start()
        try:
            result = run(pg, args)
        finally:
            pg.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

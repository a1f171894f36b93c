"""Trace-query benchmark: traces by id, trace search, and Jaeger search, p50 / p95.

    .venv/bin/python bench/traces.py [--spans 1000000 --orgs 10 --days 3] [--quick]

In one run, on one embedded PostgreSQL (PostgreSQL engine, fsync on):
1. load: the bench/rollups dataset (``--spans`` synthetic agent spans over ``--days``
   days across ``--orgs`` orgs of skewed sizes, traces of 10 spans; bench/_rollup_load.py)
   and, in the largest org, three traces of 10, 1,000 and 10,000 spans (a tree of
   fan-out 8, an event on every 5th span, an LLM call on every 20th), all through the
   product's IngestWriter; then VACUUM ANALYZE;
2. queries, warm, as the org's tenant: through the real API on 127.0.0.1 with the org's
   admin key (the time to the whole answer, decoded with orjson), and trace by id also
   through the trace-query core in process (fetch, tree and critical path; no JSON), to
   show the HTTP and rendering share:
   - trace by id (``GET /v1/traces/{id}``: spans, tree, critical path, totals);
   - search of the last 24 h with a service + operation filter, and with a service +
     attribute filter (``GET /v1/traces``, 20 results), a random one of the org's
     services and operations each run;
   - Jaeger search as Grafana sends it (``GET /jaeger/api/traces?service=&operation=
     &limit=20&start=&end=&lookback=custom``, the last hour), returning 20 whole traces.
Prints a table and, last, a one-line JSON summary. Targets (p95): by id under 50 ms for
1,000 spans; search under 200 ms; Jaeger search of 20 traces under 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _rollup_load as synth  # noqa: E402
from storage import admin  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.embedded import EmbeddedPostgres, free_port  # noqa: E402
from storage.ingest.rows import Batch, EventRow, LlmCall, SpanRow  # noqa: E402
from storage.ingest.writer import IngestWriter  # noqa: E402
from storage.read import traces as core  # noqa: E402
from storage.read.trace_view import analyse  # noqa: E402
from storage.tenancy import DbRole, Scope  # noqa: E402
from storage.transaction import scoped_transaction  # noqa: E402

SERVER_SETTINGS = {"shared_buffers": "1GB", "work_mem": "32MB", "max_wal_size": "4GB"}
TARGETS_MS = {"by_id_1000_p95": 50.0, "search_p95": 200.0, "jaeger_search_p95": 300.0}
BIG_TRACES = (10, 1_000, 10_000)
FAN_OUT = 8


def big_trace(trace_id: bytes, n: int, start_ns: int) -> Batch:
    """``n`` spans in a tree of fan-out 8 (children inside their parent's time)."""
    spans, events, calls = [], [], []
    for i in range(n):
        parent = (i - 1) // FAN_OUT if i else None
        depth = 0 if i == 0 else 1 + int.bit_length(i) // 3
        begin = start_ns + i * 20_000
        end = begin + max(50_000_000 >> depth, 1_000_000) + (n - i) * 10_000
        span_id = (i + 1).to_bytes(8, "big")
        llm = i % 20 == 19
        spans.append(SpanRow(
            trace_id, span_id, (parent + 1).to_bytes(8, "big") if parent is not None else None,
            None, "chat" if llm else f"step-{i % 7}", 1, begin, end, 2 if i % 97 == 5 else 0,
            None, "MOSAIC", f"svc-{i % 3}", "agent-0", "fleet-mosaic", None,
            "chat" if llm else None, "openai" if llm else None, "gpt-4o" if llm else None,
            1000 if llm else None, 200 if llm else None, "aeos.bench",
            {"step": i, "deployment.environment.name": "prod"}, {"service.name": f"svc-{i % 3}"},
        ))  # fmt: skip
        if i % 5 == 0:
            events.append(EventRow(
                trace_id[:8] + span_id, begin + 1000, None, "info", 9, "MOSAIC", "checkpoint",
                "agent-0", None, None, trace_id, span_id, f"svc-{i % 3}", "checkpoint",
                {"i": i}, {},
            ))  # fmt: skip
        if llm:
            calls.append(LlmCall(trace_id, span_id, begin, None, "agent-0", "MOSAIC", "openai",
                                 "gpt-4o", 1000, 200, 0, 0, None))  # fmt: skip
    return Batch(uuid.UUID(int=0), spans=spans, events=events, llm_calls=calls)


async def write_batches(conninfo: str, batches: Sequence[Batch]) -> None:
    writer = IngestWriter(conninfo, flushers=1)
    await writer.start()
    try:
        for batch in batches:
            await writer.write(batch)
    finally:
        await writer.close()


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` calls after two warm-up calls."""
    for _ in range(2):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


class Api:
    """The real query API (create_app) in a uvicorn thread on 127.0.0.1."""

    def __init__(self, db: Database) -> None:
        import uvicorn

        from query_api.app import create_app

        self.port = free_port()
        config = uvicorn.Config(create_app(db.app_engine(pool_size=4)), host="127.0.0.1",
                                port=self.port, log_level="warning")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start")
            time.sleep(0.05)

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}",
                            headers={"authorization": f"Bearer {key}"}, timeout=60)  # fmt: skip

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def checked(response: httpx.Response) -> Any:
    """The decoded answer, or the run fails. orjson: the timings are the server's and the
    transfer's, not the client's JSON decoding (Python's json takes 25 ms for 1,000 spans)."""
    if response.status_code != 200:
        raise SystemExit(
            f"FAILED: {response.request.url} → {response.status_code} {response.text[:300]}"
        )
    return orjson.loads(response.content)


def measure(db: Database, org: synth.Org, key: str, big: dict[int, bytes], runs: int,
            rng: random.Random) -> dict[str, list[float]]:  # fmt: skip
    """Every measurement of the module docstring, in milliseconds."""
    out: dict[str, list[float]] = {}
    engine = db.app_engine(pool_size=2)
    scope = Scope(DbRole.TENANT, org.org_id)
    now = datetime.now(UTC)
    for n, tid in big.items():

        def core_by_id(tid: bytes = tid) -> None:
            with scoped_transaction(engine, scope) as conn:
                analyse(core.get_trace(conn, tid))

        out[f"core by id {n:,} spans"] = timed(core_by_id, runs)
    ops = [(o.service, o.name, o.attributes) for o in org.operations]
    api = Api(db)
    try:
        with api.client(key) as http:
            for n, tid in big.items():

                def by_id(tid: bytes = tid) -> None:
                    checked(http.get(f"/v1/traces/{tid.hex()}"))

                out[f"GET /v1/traces/{{id}} {n:,} spans"] = timed(by_id, runs)
            day: dict[str, Any] = {
                "start": (now - timedelta(hours=24)).isoformat(),
                "end": now.isoformat(),
                "limit": 20,
            }

            def search_op() -> None:
                service, name, _ = rng.choice(ops)
                checked(
                    http.get("/v1/traces", params={**day, "service": service, "operation": name})
                )

            def search_attr() -> None:
                service, _, attrs = rng.choice(ops)
                key_, value = rng.choice(sorted(attrs.items()))
                value = json.dumps(value) if not isinstance(value, str) else value
                checked(http.get("/v1/traces", params={**day, "service": service,
                                                        "attr": f"{key_}:{value}"}))  # fmt: skip

            out["GET /v1/traces service+operation 24 h"] = timed(search_op, runs)
            out["GET /v1/traces service+attribute 24 h"] = timed(search_attr, runs)

            def jaeger() -> None:
                service, name, _ = rng.choice(ops)
                end_us = int(time.time() * 1e6)
                body = checked(http.get("/jaeger/api/traces", params={
                    "service": service, "operation": name, "limit": "20",
                    "start": str(end_us - 3_600_000_000), "end": str(end_us),
                    "lookback": "custom"}))  # fmt: skip
                if len(body["data"]) != 20:
                    raise SystemExit(f"FAILED: Jaeger search returned {len(body['data'])} traces")

            out["GET /jaeger/api/traces 20 traces, 1 h"] = timed(jaeger, runs)
    finally:
        api.stop()
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="100k spans, 20 runs")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.spans, args.runs = 100_000, 20
    return args


def run(pg: EmbeddedPostgres, args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC)
    url = pg.ensure_database("bench_traces")
    world = synth.new_world(url, args.orgs, args.spans, now - timedelta(days=args.days),
                            now - timedelta(minutes=1), 2_000, prefix="traces")  # fmt: skip
    db, org = world.db, world.orgs[0]
    print(f"load: {args.spans:,} spans over {args.days} days, {args.orgs} orgs "
          f"(largest {org.spans:,} spans)", flush=True)  # fmt: skip
    started = time.monotonic()
    asyncio.run(synth.load(db.app_conninfo(), world, args.concurrency, args.seed))
    big = {n: uuid.uuid4().bytes for n in BIG_TRACES}
    start_ns = time.time_ns() - 600 * 10**9
    batches = []
    for n, tid in big.items():
        batch = big_trace(tid, n, start_ns)
        batch.org_id = org.org_id
        batches.append(batch)
    asyncio.run(write_batches(db.app_conninfo(), batches))
    load_s = time.monotonic() - started
    with psycopg.connect(db.admin_url.set(drivername="postgresql").render_as_string(
            hide_password=False), autocommit=True) as conn:  # fmt: skip
        conn.execute("VACUUM (ANALYZE)")
    with db.admin_engine().begin() as conn:
        key = admin.create_key(conn, f"traces-{0:02d}", "admin").plaintext
    print(f"loaded in {load_s:.0f}s; {args.runs} runs each, warm:", flush=True)
    results = measure(db, org, key, big, args.runs, random.Random(args.seed))
    db.close()
    return {"load_s": load_s, "results": results}


def report(args: argparse.Namespace, out: dict[str, Any]) -> None:
    results: dict[str, list[float]] = out["results"]
    print(f"{'query':<44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in results.items():
        print(f"{name:<44} {p(values, 50):8.1f} {p(values, 95):8.1f} {max(values):8.1f}")
    search = [p(v, 95) for k, v in results.items() if k.startswith("GET /v1/traces service")]
    summary = {
        "spans": args.spans, "orgs": args.orgs, "days": args.days, "runs": args.runs,
        "load_s": round(out["load_s"], 1),
        **{f"p95_ms {k}": round(p(v, 95), 1) for k, v in results.items()},
        "targets_ms": TARGETS_MS,
        "met": {
            "by_id_1000_p95": p(results["GET /v1/traces/{id} 1,000 spans"], 95) < 50,
            "search_p95": max(search) < 200,
            "jaeger_search_p95": p(results["GET /jaeger/api/traces 20 traces, 1 h"], 95) < 300,
        },
    }  # fmt: skip
    print(json.dumps(summary))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aeos-bench-traces-", dir=args.data_dir) as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), dict(SERVER_SETTINGS))
        pg.start()
        try:
            out = run(pg, args)
        finally:
            pg.stop()
    report(args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

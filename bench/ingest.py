"""Ingest benchmark: sustained spans/s end to end against raw binary COPY, and RSS at 2x load.

    .venv/bin/python bench/ingest.py [--seconds 20] [--spans-per-request 500]

In one run, on one embedded PostgreSQL (durable settings: fsync on):
1. end to end: OTLP/gRPC requests (about 20 attributes a span) from a load generator to
   ``aeos serve --only receiver``; a span counts once its request is acknowledged, which
   happens only after commit; afterwards the table is checked to hold exactly that many;
2. baseline: the same rows, translated once up front, written by one binary COPY stream
   straight into ``spans`` (what the database can take with no receiver at all);
3. overload: twice the concurrency that saturated the receiver, while sampling the
   receiver processes' resident memory; refused requests (UNAVAILABLE) are counted.
Prints the figures and the ratio end-to-end / COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb  # noqa: E402
from opentelemetry.proto.common.v1 import common_pb2  # noqa: E402
from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402

from storage import admin  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.embedded import EmbeddedPostgres, free_port  # noqa: E402
from storage.ingest import _sql as q  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.settings import EngineChoice  # noqa: E402
from storage.tenancy import DbRole, Scope, act_as  # noqa: E402
from tests.e2e.conftest import start_service, stop_service  # noqa: E402

RUN_ID = random.Random().getrandbits(40) << 20
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MARK = b"\xae\x05\xae\x05\xae\x05\xae\x05"  # first 8 bytes of every trace id in a template
MODELS = [
    ("anthropic", "claude-sonnet-4-20250514"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
]


def _kv(key: str, value: object) -> common_pb2.KeyValue:
    if isinstance(value, bool):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(bool_value=value))
    if isinstance(value, int):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(int_value=value))
    if isinstance(value, float):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(double_value=value))
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=str(value)))


def build_request(n_spans: int, seq: int, rng: random.Random) -> bytes:
    """One export request: ``n_spans`` spans of 19-20 attributes, traces of 10 spans."""
    request = pb.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    agent = f"agent-{seq % 16}"
    for key, value in (("service.name", "planner"), ("service.version", "1.4.2"), ("aeos.agent.id", agent),
                       ("aeos.fleet.id", "fleet-1"), ("aeos.subsystem", "MOSAIC")):  # fmt: skip
        rs.resource.attributes.append(_kv(key, value))
    scope = rs.scope_spans.add()
    scope.scope.name = "aeos.bench"
    now = time.time_ns()
    trace_id = b""
    for i in range(n_spans):
        if i % 10 == 0:
            trace_id = MARK + rng.randbytes(8)
        span = scope.spans.add()
        span.trace_id = trace_id
        span.span_id = rng.randbytes(8)
        if i % 10:
            span.parent_span_id = b"\x01" * 8
        span.name = f"step-{i % 7}"
        span.kind = trace_pb2.Span.SPAN_KIND_INTERNAL
        span.start_time_unix_nano = now - rng.randrange(1_000_000, 50_000_000)
        span.end_time_unix_nano = now
        provider, model = MODELS[i % len(MODELS)]
        attrs: dict[str, object] = {
            "mosaic.task_run.id": f"run-{seq}-{i // 10}", "mosaic.task.id": f"task-{seq % 100}",
            "mosaic.routing.route": "planner", "mosaic.plan.step": i % 5,
            "uce.context.id": f"ctx-{i % 50}", "uce.operation.name": "read",
            "uce.cache.hit": i % 3 == 0, "uce.context.size_tokens": 4096,
            "http.request.method": "POST", "server.address": "llm.internal", "server.port": 443,
            "user.tier": "gold", "request.id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "retry.count": 0, "latency.budget_ms": 2500.0,
        }  # fmt: skip
        if i % 4 == 1:  # one span in four is an LLM call (a realistic share in agent traces)
            attrs.update({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                "gen_ai.request.model": model, "gen_ai.usage.input_tokens": rng.randrange(100, 5000),
                "gen_ai.usage.output_tokens": rng.randrange(10, 800),
            })  # fmt: skip
        else:
            attrs.update({"code.function.name": f"step_{i % 7}", "deployment.environment.name": "prod",
                          "aeos.tenant.region": "eu-west", "agent.step.kind": "tool",
                          "tool.name": "search"})  # fmt: skip
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
        if i % 50 == 7:
            span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    return request.SerializeToString()


async def drive(endpoint: str, key: str, payloads: list[bytes], spans_per_request: int,
                concurrency: int, seconds: float, first_seq: int = 0) -> tuple[int, int, float]:  # fmt: skip
    """Sends requests for ``seconds`` with ``concurrency`` in flight; (acked spans, refused, s)."""
    channel = grpc.aio.insecure_channel(
        endpoint, options=[("grpc.max_send_message_length", 64 << 20)]
    )
    call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    metadata = (("authorization", f"Bearer {key}"),)
    acked = refused = 0
    deadline = time.monotonic() + seconds
    counter = iter(range(first_seq, first_seq + 10**9))

    async def worker() -> None:
        nonlocal acked, refused
        while time.monotonic() < deadline:
            seq = next(counter)
            # Fresh trace ids for every request (a C-speed byte replace), so that nothing
            # is a duplicate: the benchmark measures the fast path, not de-duplication.
            payload = payloads[seq % len(payloads)].replace(MARK, (RUN_ID + seq).to_bytes(8, "big"))
            try:
                await call(payload, metadata=metadata, timeout=60)
                acked += spans_per_request
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                refused += 1
                await asyncio.sleep(0.05)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await channel.close()
    return acked, refused, elapsed


def copy_baseline(
    conninfo: str, payloads: list[bytes], org_id: uuid.UUID, total_spans: int
) -> float:
    """Spans/s of one binary COPY stream of the same rows straight into ``spans``."""
    from otlp_receiver._translate import translate_traces

    rows = []
    for payload in payloads:
        request = pb.ExportTraceServiceRequest.FromString(payload)
        rows.extend(q.span_tuple(org_id, s) for s in translate_traces(request, org_id).batch.spans)
    rows = (rows * (total_spans // len(rows) + 1))[:total_spans]
    rng = random.Random(7)
    rows = [(r[0], rng.randbytes(16), *r[2:]) for r in rows]  # fresh ids: no conflicts

    async def run() -> float:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        q.configure(conn)
        started = time.perf_counter()
        async with conn.transaction():
            await q.copy_rows(conn, "spans", q.SPAN_COLUMNS, rows)
        elapsed = time.perf_counter() - started
        await conn.close()
        return len(rows) / elapsed

    return asyncio.run(run())


def receiver_rss(service_pid: int) -> list[int]:
    try:
        children = psutil.Process(service_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c.memory_info().rss for c in children if "postgres" not in c.name()]


async def overload(endpoint: str, key: str, payloads: list[bytes], n: int, spans_per_s: float,
                   seconds: float, service_pid: int) -> tuple[int, int, int, int, int]:  # fmt: skip
    """Open loop: requests leave at ``spans_per_s`` whatever the answers (up to 512 in
    flight), as clients behind a load balancer would. Returns acked spans, refused
    requests, other failures, and the peak RSS of one receiver process and of all."""
    channel = grpc.aio.insecure_channel(
        endpoint, options=[("grpc.max_send_message_length", 64 << 20)]
    )
    call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    metadata = (("authorization", f"Bearer {key}"),)
    acked = refused = failed = peak_each = peak_total = 0
    in_flight: set[asyncio.Task[None]] = set()

    async def one(seq: int) -> None:
        nonlocal acked, refused, failed
        payload = payloads[seq % len(payloads)].replace(
            MARK, (RUN_ID + 10**7 + seq).to_bytes(8, "big")
        )
        try:
            await call(payload, metadata=metadata, timeout=60)
            acked += n
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                refused += 1
            else:
                failed += 1

    interval = n / spans_per_s
    started = time.monotonic()
    seq = 0
    while time.monotonic() - started < seconds:
        if len(in_flight) < 512:
            task = asyncio.create_task(one(seq))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        seq += 1
        rss = receiver_rss(service_pid)
        if rss:
            peak_each, peak_total = max(peak_each, max(rss)), max(peak_total, sum(rss))
        await asyncio.sleep(max(started + seq * interval - time.monotonic(), 0))
    await asyncio.gather(*in_flight, return_exceptions=True)
    await channel.close()
    print(
        f"  (the last answers came {time.monotonic() - started - seconds:.1f}s after sending stopped)"
    )
    return acked, refused, failed, peak_each, peak_total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--spans-per-request", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    n = args.spans_per_request
    rng = random.Random(42)
    payloads = [build_request(n, seq, rng) for seq in range(64)]
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        admin_url = pg.start()
        try:
            run_bench(pg, admin_url, Path(tmp), payloads, n, args)
        finally:
            pg.stop()


def run_bench(pg: EmbeddedPostgres, admin_url: object, tmp: Path, payloads: list[bytes], n: int,
              args: argparse.Namespace) -> None:  # fmt: skip
    url = pg.ensure_database("bench")
    migrate(url, EngineChoice.POSTGRES)
    db = Database(url, "bench-app-password")
    with db.admin_engine().begin() as conn:
        from sqlalchemy import text

        conn.execute(text("ALTER ROLE aeos_app LOGIN PASSWORD 'bench-app-password'"))
        act_as(conn, Scope(DbRole.STAFF))  # the rest of this transaction administers orgs
        org = admin.create_org(conn, "bench", "enterprise")
    proc, _env, _banner, (grpc_port, _http, _api) = start_service(
        url, tmp, AEOS_RECEIVER_AUTH_CACHE_SECONDS="60"
    )
    endpoint = f"127.0.0.1:{grpc_port}"
    key = org.ingest_key.plaintext
    try:
        asyncio.run(drive(endpoint, key, payloads[:4], n, 2, 3.0, first_seq=10**12))  # warm-up
        warm = _count(db)
        acked, refused, elapsed = asyncio.run(
            drive(endpoint, key, payloads, n, args.concurrency, args.seconds)
        )
        stored = _count(db) - warm
        e2e = acked / elapsed
        print(f"end to end (OTLP/gRPC -> committed): {acked} spans in {elapsed:.1f}s = {e2e:,.0f} spans/s "
              f"({refused} requests refused; {stored} rows stored for {acked} acknowledged)")  # fmt: skip
        o_acked, o_refused, o_failed, peak_each, peak_total = asyncio.run(
            overload(endpoint, key, payloads, n, 2 * e2e, args.seconds, proc.pid)
        )
        print(f"overload (open loop at 2x = {2 * e2e:,.0f} spans/s offered for {args.seconds:.0f}s): "
              f"{o_acked} spans acknowledged, {o_refused} requests refused with UNAVAILABLE "
              f"(retry later), {o_failed} other failures; receiver peak RSS "
              f"{peak_each / 2**20:.0f} MB per process, {peak_total / 2**20:.0f} MB all processes")  # fmt: skip
    finally:
        stop_service(proc)
    admin_conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    copy_rate = copy_baseline(admin_conninfo, payloads, org.org_id, max(acked, 100_000))
    print(f"baseline (one binary COPY stream into spans): {copy_rate:,.0f} spans/s")
    print(f"ratio end-to-end / COPY: {e2e / copy_rate:.2f}")
    with psycopg.connect(admin_conninfo) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(f"machine: {os.cpu_count()} cores shared by load generator, receivers and PostgreSQL "
          f"{version[0] if version else '?'} (embedded, fsync on); {n} spans a request")  # fmt: skip
    db.close()


def _count(db: Database) -> int:
    with db.admin_engine().connect() as conn:
        from sqlalchemy import text

        return int(conn.execute(text("SELECT count(*) FROM spans")).scalar_one())


if __name__ == "__main__":
    main()

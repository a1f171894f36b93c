"""Ingest benchmark: sustained spans/s end to end against raw binary COPY, and RSS at 2x load.

    .venv/bin/python bench/ingest.py [--seconds 20] [--spans-per-request 500]
        [--transports grpc,http] [--rollups on|off|both] [--pairs 1] [--no-overload]
        [--env AEOS_RECEIVER_X=VALUE] [--pg SETTING=VALUE]

In one run, on one embedded PostgreSQL (durable settings: fsync on):
1. end to end: OTLP requests (about 20 attributes a span) over gRPC or HTTP/protobuf
   from a load generator to ``aeos serve --only receiver`` (2 receiver processes), over
   8 connections (agents connect separately; the kernel spreads connections over the
   processes); a span counts once its request is acknowledged, which happens only after
   commit; afterwards the table is checked to hold exactly that many. The one org's key
   gets the concurrency the load generator uses and no rate limit: this measures
   capacity, not the per-key fairness limits. ``--rollups both`` runs every transport
   with rollups at ingest on and off, in interleaved pairs (``--pairs``), and prints the
   cost of rollups. The CPU each group of processes used is printed per span: the
   server processes counted include the connections opened during the run;
2. overload: a receiver with default settings (per-key limits on), open loop at twice
   the first gRPC rate measured, while sampling the receiver processes' resident memory;
   refused requests (UNAVAILABLE) are counted;
3. baseline: the same rows, translated once up front, written by one binary COPY stream
   straight into ``spans`` (what the database can take with no receiver at all), the
   best of 3 rounds of 100,000 rows.
Prints the figures and the ratio end-to-end / COPY for every run.
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
from typing import Any

import grpc
import httpx
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

CONNECTIONS = 8  # load generator connections (distinct agents)

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
                concurrency: int, seconds: float, first_seq: int = 0,
                transport: str = "grpc") -> tuple[int, int, float]:  # fmt: skip
    """Sends requests for ``seconds`` with ``concurrency`` in flight; (acked spans, refused, s)."""
    send, close = _sender(endpoint, key, transport)
    acked = refused = 0
    deadline = time.monotonic() + seconds
    counter = iter(range(first_seq, first_seq + 10**9))

    async def worker(n: int) -> None:
        nonlocal acked, refused
        while time.monotonic() < deadline:
            seq = next(counter)
            # Fresh trace ids for every request (a C-speed byte replace), so that nothing
            # is a duplicate: the benchmark measures the fast path, not de-duplication.
            payload = payloads[seq % len(payloads)].replace(MARK, (RUN_ID + seq).to_bytes(8, "big"))
            if await send(n, payload):
                acked += spans_per_request
            else:
                refused += 1
                await asyncio.sleep(0.05)

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.monotonic() - started
    await close()
    return acked, refused, elapsed


def _sender(endpoint: str, key: str, transport: str) -> tuple[Any, Any]:
    """send(worker, payload) -> acknowledged (False: refused, retry later), and close()."""
    if transport == "http":
        clients = [
            httpx.AsyncClient(base_url=f"http://{endpoint}", timeout=60) for _ in range(CONNECTIONS)
        ]
        headers = {"authorization": f"Bearer {key}", "content-type": "application/x-protobuf"}

        async def send_http(n: int, payload: bytes) -> bool:
            response = await clients[n % CONNECTIONS].post(
                "/v1/traces", content=payload, headers=headers
            )
            if response.status_code in (429, 503):
                return False
            response.raise_for_status()
            return True

        async def close_http() -> None:
            await asyncio.gather(*(c.aclose() for c in clients))

        return send_http, close_http
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(endpoint, options=options) for _ in range(CONNECTIONS)]
    calls = [
        c.unary_unary(METHOD, request_serializer=None, response_deserializer=None) for c in channels
    ]
    metadata = (("authorization", f"Bearer {key}"),)

    async def send_grpc(n: int, payload: bytes) -> bool:
        try:
            await calls[n % CONNECTIONS](payload, metadata=metadata, timeout=60)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return False
        return True

    async def close_grpc() -> None:
        await asyncio.gather(*(c.close() for c in channels))

    return send_grpc, close_grpc


def copy_baseline(
    conninfo: str, payloads: list[bytes], org_id: uuid.UUID, total_spans: int, rounds: int = 3
) -> tuple[float, list[float]]:
    """Spans/s of one binary COPY stream of the same rows straight into ``spans``: the best
    of ``rounds`` (one round of 100,000 rows took 2 s and varied by 20 % between runs; the
    best is the highest bar for the ratio), and every round's."""
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

    rates = []
    for round_ in range(rounds):  # fresh ids each round: the earlier rounds' rows stay
        rows = [(r[0], rng.randbytes(16), *r[2:]) for r in rows] if round_ else rows
        rates.append(asyncio.run(run()))
    return max(rates), rates


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    """CPU seconds (user + system) used so far by each process of each group."""
    out: dict[str, dict[int, float]] = {}
    for group, members in pids.items():
        out[group] = {}
        for pid in members:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            out[group][pid] = times.user + times.system
    return out


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds each group used between two readings, processes started meanwhile
    included (a writer opens its second connection only once load needs it)."""
    return {
        group: sum(t - before.get(group, {}).get(pid, 0.0) for pid, t in pids.items())
        for group, pids in after.items()
    }


def process_groups(service_pid: int, pgdata: Path) -> dict[str, list[int]]:
    """Receiver processes, this run's PostgreSQL server processes, and this process."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    server = [postmaster, *(c.pid for c in psutil.Process(postmaster).children(recursive=True))]
    receivers = [c.pid for c in psutil.Process(service_pid).children(recursive=True)]
    return {"receivers": receivers, "postgres": server, "load generator": [os.getpid()]}


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
    parser.add_argument("--transports", default="grpc,http")
    parser.add_argument("--rollups", choices=("on", "off", "both"), default="on")
    parser.add_argument("--pairs", type=int, default=1, help="on/off pairs with --rollups both")
    parser.add_argument("--no-overload", action="store_true")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="AEOS_RECEIVER_X=VALUE",
        help="a receiver setting for the end-to-end runs (repeatable)",
    )
    parser.add_argument(
        "--pg",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="a PostgreSQL server setting (repeatable)",
    )
    args = parser.parse_args()
    n = args.spans_per_request
    rng = random.Random(42)
    payloads = [build_request(n, seq, rng) for seq in range(64)]
    with tempfile.TemporaryDirectory() as tmp:
        pg_settings = dict(item.split("=", 1) for item in args.pg)
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), pg_settings)
        admin_url = pg.start()
        try:
            run_bench(pg, admin_url, Path(tmp), payloads, n, args)
        finally:
            pg.stop()


def _runs(args: argparse.Namespace) -> list[tuple[str, bool]]:
    """(transport, rollups at ingest) of every end-to-end run, on/off pairs interleaved."""
    settings = {"on": [True], "off": [False], "both": [True, False] * args.pairs}[args.rollups]
    return [(transport, on) for transport in args.transports.split(",") for on in settings]


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
    results: list[tuple[str, bool, float]] = []
    for i, (transport, rollups) in enumerate(_runs(args)):
        rate = run_once(url, tmp, db, org.ingest_key.plaintext, payloads, n, args, transport,
                        rollups, first_seq=i * 10**8, pgdata=pg.pgdata)  # fmt: skip
        results.append((transport, rollups, rate))
    grpc_rates = [r for t, on, r in results if t == "grpc" and on]
    if grpc_rates and not args.no_overload:
        run_overload(url, tmp, org.ingest_key.plaintext, payloads, n, args.seconds, grpc_rates[0])
    admin_conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    copy_rate, rounds = copy_baseline(admin_conninfo, payloads, org.org_id, 100_000)
    print(f"baseline (one binary COPY stream into spans): {copy_rate:,.0f} spans/s (best of "
          + ", ".join(f"{r:,.0f}" for r in rounds) + ")")  # fmt: skip
    for transport, rollups, rate in results:
        print(f"ratio end-to-end / COPY, {transport}, rollups {'on' if rollups else 'off'}: "
              f"{rate / copy_rate:.2f}")  # fmt: skip
    _print_rollup_cost(results)
    with psycopg.connect(admin_conninfo) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(f"machine: {os.cpu_count()} cores shared by load generator, receivers and PostgreSQL "
          f"{version[0] if version else '?'} (embedded, fsync on); {n} spans a request")  # fmt: skip
    db.close()


def run_once(url: Any, tmp: Path, db: Database, key: str, payloads: list[bytes], n: int,
             args: argparse.Namespace, transport: str, rollups: bool, first_seq: int,
             pgdata: Path) -> float:  # fmt: skip
    """One end-to-end run on a fresh ``aeos serve --only receiver``; returns spans/s."""
    proc, _env, _banner, (grpc_port, http_port, _api) = start_service(
        url, tmp, ["--only", "receiver"],
        AEOS_RECEIVER_AUTH_CACHE_SECONDS="60",
        AEOS_RECEIVER_MAX_CONCURRENT_REQUESTS_PER_KEY=str(args.concurrency),
        AEOS_RECEIVER_MAX_CONCURRENT_REQUESTS=str(max(args.concurrency, 32)),
        AEOS_RECEIVER_RATE_LIMIT_ITEMS_PER_SECOND="0",
        AEOS_RECEIVER_ROLLUPS_AT_INGEST="true" if rollups else "false",
        **dict(item.split("=", 1) for item in args.env),
    )  # fmt: skip
    endpoint = f"127.0.0.1:{grpc_port if transport == 'grpc' else http_port}"
    label = f"{transport}, rollups {'on' if rollups else 'off'}"
    try:
        asyncio.run(drive(endpoint, key, payloads[:4], n, 2, 3.0, 10**12 + first_seq, transport))
        warm = _count(db)
        cpu_before = cpu_seconds(process_groups(proc.pid, pgdata))
        acked, refused, elapsed = asyncio.run(
            drive(endpoint, key, payloads, n, args.concurrency, args.seconds, first_seq, transport)
        )
        used = cpu_used(cpu_before, cpu_seconds(process_groups(proc.pid, pgdata)))
        stored = _count(db) - warm
        e2e = acked / elapsed
        print(f"end to end ({label}): {acked} spans in {elapsed:.1f}s = {e2e:,.0f} spans/s "
              f"({refused} requests refused; {stored} rows stored for {acked} acknowledged)")  # fmt: skip
        per_span = {g: seconds / max(acked, 1) * 1e6 for g, seconds in used.items()}
        busy = sum(used.values()) / elapsed
        print("  CPU per span: " + ", ".join(f"{g} {us:.1f} µs" for g, us in per_span.items())
              + f"; these processes kept {busy:.2f} of {os.cpu_count()} cores busy")  # fmt: skip
    finally:
        stop_service(proc)
    return e2e


def run_overload(url: Any, tmp: Path, key: str, payloads: list[bytes], n: int, seconds: float,
                 rate: float) -> None:  # fmt: skip
    """Open loop at twice ``rate`` (gRPC) on a receiver with default settings; prints RSS."""
    proc, _env, _banner, (grpc_port, _http, _api) = start_service(
        url, tmp, ["--only", "receiver"], AEOS_RECEIVER_AUTH_CACHE_SECONDS="60"
    )
    try:
        o_acked, o_refused, o_failed, peak_each, peak_total = asyncio.run(
            overload(f"127.0.0.1:{grpc_port}", key, payloads, n, 2 * rate, seconds, proc.pid)
        )
        print(f"overload, default settings (open loop at 2x = {2 * rate:,.0f} spans/s offered for "
              f"{seconds:.0f}s): {o_acked} spans acknowledged, {o_refused} requests refused with "
              f"UNAVAILABLE (retry later), {o_failed} other failures; receiver peak RSS "
              f"{peak_each / 2**20:.0f} MB per process, {peak_total / 2**20:.0f} MB all processes")  # fmt: skip
    finally:
        stop_service(proc)


def _print_rollup_cost(results: list[tuple[str, bool, float]]) -> None:
    """1 - on/off for every transport measured both ways (mean of the pairs' rates)."""
    for transport in dict.fromkeys(t for t, _, _ in results):
        on = [r for t, roll, r in results if t == transport and roll]
        off = [r for t, roll, r in results if t == transport and not roll]
        if on and off:
            cost = 1 - (sum(on) / len(on)) / (sum(off) / len(off))
            print(f"rollups at ingest, {transport}: on {sum(on) / len(on):,.0f} vs off "
                  f"{sum(off) / len(off):,.0f} spans/s: cost {cost:.1%}")  # fmt: skip


def _count(db: Database) -> int:
    with db.admin_engine().connect() as conn:
        from sqlalchemy import text

        return int(conn.execute(text("SELECT count(*) FROM spans")).scalar_one())


if __name__ == "__main__":
    main()

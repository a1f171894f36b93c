"""Faults: the database goes away mid-stream, a receiver process is killed."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import psutil
import psycopg
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.engine import URL

from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.embedded import EmbeddedPostgres, free_port
from storage.migrate import migrate
from storage.settings import EngineChoice
from tests.conftest import FAST_SERVER_SETTINGS, TEST_APP_PASSWORD
from tests.e2e.conftest import start_service, stop_service

pytestmark = pytest.mark.slow


def _conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, URL, str]]:
    """A PostgreSQL of this test's own (it gets stopped), migrated, with one org."""
    pg = EmbeddedPostgres(tmp_path / "pg", free_port(), {**FAST_SERVER_SETTINGS, "fsync": "on"})
    pg.start()
    url = pg.ensure_database("aeos")
    migrate(url, EngineChoice.POSTGRES)
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE aeos_app LOGIN PASSWORD '{TEST_APP_PASSWORD}'")
    db = Database(url, TEST_APP_PASSWORD)
    with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        key = admin.create_org(conn, "faulty", "pro").ingest_key.plaintext
    db.close()
    try:
        yield pg, url, key
    finally:
        pg.stop()


def _count_spans(url: URL) -> int:
    with psycopg.connect(_conninfo(url)) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans"
        ).fetchone()
        assert row is not None
        assert row[0] == row[1]  # never stored twice
        return int(row[0])


def test_database_restart_mid_stream_loses_nothing_and_stores_once(
    own_server: tuple[EmbeddedPostgres, URL, str], tmp_path: Path
) -> None:
    pg, url, key = own_server
    proc, _, _, (grpc_port, _, _) = start_service(
        url, tmp_path / "serve", AEOS_RECEIVER_AUTH_CACHE_SECONDS="300"
    )
    try:
        exporter = OTLPSpanExporter(
            endpoint=f"127.0.0.1:{grpc_port}", insecure=True,
            headers={"authorization": f"Bearer {key}"}, timeout=60,
        )  # fmt: skip
        provider = TracerProvider(resource=Resource.create({"service.name": "steady"}))
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=100, max_queue_size=100_000)
        )
        tracer = provider.get_tracer("faults")
        sent = 0
        for i in range(60):
            for _ in range(50):
                with tracer.start_as_current_span(f"op-{i}"):
                    sent += 1
            if i == 20:
                pg.stop()  # the database goes away mid-stream ...
            if i == 35:
                pg.start()  # ... and comes back
            time.sleep(0.1)
        assert provider.force_flush(120_000)
        provider.shutdown()
        assert _count_spans(url) == sent
    finally:
        stop_service(proc)


def _receivers(service_pid: int, grpc_port: int) -> list[psutil.Process]:
    # The receiver workers are the children listening on the OTLP port (the API
    # workers are multiprocessing children too).
    return [
        c for c in psutil.Process(service_pid).children(recursive=True)
        if any(k.laddr and k.laddr.port == grpc_port and k.status == psutil.CONN_LISTEN
               for k in c.net_connections(kind="tcp"))
    ]  # fmt: skip


def test_sigkill_of_a_receiver_loses_no_acknowledged_span(
    own_server: tuple[EmbeddedPostgres, URL, str], tmp_path: Path
) -> None:
    _, url, key = own_server
    proc, _, _, (grpc_port, _, _) = start_service(url, tmp_path / "serve")
    acked: list[bytes] = []
    stop = threading.Event()

    def send() -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        while not stop.is_set():
            request = trace_service_pb2.ExportTraceServiceRequest()
            spans = request.resource_spans.add().scope_spans.add().spans
            trace_id = uuid.uuid4().bytes
            now = time.time_ns()
            for n in range(1, 101):
                spans.add(trace_id=trace_id, span_id=n.to_bytes(8, "big"), name="x",
                          start_time_unix_nano=now, end_time_unix_nano=now + 1000)  # fmt: skip
            try:
                stub.Export(request, metadata=[("authorization", f"Bearer {key}")], timeout=30)
                acked.append(trace_id)
            except grpc.RpcError:
                time.sleep(0.05)  # not acknowledged: the client would retry it
        channel.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(2)
        victims = _receivers(proc.pid, grpc_port)
        assert len(victims) == 2
        os.kill(victims[0].pid, signal.SIGKILL)
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join()
        assert len(acked) > 10
        with psycopg.connect(_conninfo(url)) as conn:
            stored = {r[0] for r in conn.execute("SELECT DISTINCT trace_id FROM spans").fetchall()}
            counts = conn.execute(
                "SELECT count(*) FROM spans WHERE trace_id = ANY(%s)", [acked]
            ).fetchone()
        assert set(acked) <= stored
        assert counts == (100 * len(acked),)
        deadline = time.monotonic() + 60  # the dead one is replaced (it listens once ready)
        while len(_receivers(proc.pid, grpc_port)) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_receivers(proc.pid, grpc_port)) == 2
    finally:
        stop.set()
        stop_service(proc)


def test_overload_is_refused_with_retry_later_and_nothing_accepted_is_lost(
    own_server: tuple[EmbeddedPostgres, URL, str], tmp_path: Path
) -> None:
    _, url, key = own_server
    proc, _, _, (_, http_port, _) = start_service(
        url,
        tmp_path / "serve",
        AEOS_RECEIVER_WORKERS="1",
        AEOS_RECEIVER_MAX_CONCURRENT_REQUESTS="1",
    )
    results: list[tuple[int, str | None, bytes]] = []

    def send() -> None:
        request = trace_service_pb2.ExportTraceServiceRequest()
        spans = request.resource_spans.add().scope_spans.add().spans
        trace_id = uuid.uuid4().bytes
        now = time.time_ns()
        for n in range(1, 2001):
            spans.add(trace_id=trace_id, span_id=n.to_bytes(8, "big"), name="x",
                      start_time_unix_nano=now, end_time_unix_nano=now + 1000)  # fmt: skip
        response = httpx.post(
            f"http://127.0.0.1:{http_port}/v1/traces", content=request.SerializeToString(),
            headers={"authorization": f"Bearer {key}", "content-type": "application/x-protobuf"},
            timeout=60,
        )  # fmt: skip
        results.append((response.status_code, response.headers.get("retry-after"), trace_id))

    try:
        threads = [threading.Thread(target=send) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(code for code, _, _ in results)
        assert 429 in codes
        assert 200 in codes
        assert set(codes) == {200, 429}
        assert all(after == "1" for code, after, _ in results if code == 429)
        accepted = [trace for code, _, trace in results if code == 200]
        refused = [trace for code, _, trace in results if code == 429]
        with psycopg.connect(_conninfo(url)) as conn:
            stored = conn.execute(
                "SELECT count(*) FILTER (WHERE trace_id = ANY(%s)), "
                "count(*) FILTER (WHERE trace_id = ANY(%s)) FROM spans",
                [accepted, refused],
            ).fetchone()
        assert stored == (2000 * len(accepted), 0)
    finally:
        stop_service(proc)

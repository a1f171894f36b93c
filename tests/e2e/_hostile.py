"""The hostile-input suite's harness: a live ``aeos serve`` and one check for every case.

Every case sends its hostile request at the same moment as a normal request of another
org (so that both can share one group commit), then checks what issue 9 asks of the
receiver: the hostile request gets a clear answer (a 4xx or a partial success, retryable
only when the cause is load), the other org's request is answered and stored, every
worker stays ready, and a normal request right after succeeds. "Answered" means within
the client's timeout (``ANSWER_TIMEOUT_S``): a hang fails the case; no duration is
asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from storage import admin
from storage.database import Database
from storage.embedded import free_port
from storage.migrate import StorageEngine
from tests.conftest import ENGINES, TEST_APP_PASSWORD, PgServer, _template, create_database
from tests.conftest import drop_database as _drop_database

ANSWER_TIMEOUT_S = 20.0
PROTOBUF = "application/x-protobuf"
#: Small limits, so that every case is cheap to build; the same code paths as defaults.
SETTINGS = {
    "AEOS_RECEIVER_WORKERS": "2",
    "AEOS_RECEIVER_AUTH_CACHE_SECONDS": "5",
    "AEOS_RECEIVER_MAX_REQUEST_BYTES": str(4 * 1024 * 1024),
    "AEOS_RECEIVER_MAX_REQUEST_ITEMS": "2000",
    "AEOS_RECEIVER_MAX_PENDING_ITEMS": "40000",
    "AEOS_RECEIVER_MAX_PENDING_ITEMS_PER_ORG": "20000",
    "AEOS_RECEIVER_RATE_LIMIT_ITEMS_PER_SECOND": "500",
    "AEOS_RECEIVER_RATE_LIMIT_BURST_ITEMS": "2000",
    "AEOS_RECEIVER_MAX_CONCURRENT_REQUESTS_PER_KEY": "4",
    "AEOS_RECEIVER_MAX_BODY_BYTES_IN_FLIGHT": str(16 * 1024 * 1024),
    "AEOS_RECEIVER_BODY_TIMEOUT_SECONDS": "2",
    "AEOS_RECEIVER_HEADER_TIMEOUT_SECONDS": "2",
    "AEOS_RECEIVER_IDLE_TIMEOUT_SECONDS": "5",
    "AEOS_RECEIVER_HEALTH_REPORT_SECONDS": "60",
    "AEOS_RECEIVER_GRPC_MAX_CONCURRENT_STREAMS": "6",
    "AEOS_RECEIVER_GRPC_KEEPALIVE_SECONDS": "2",
}
TRACES_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass(frozen=True)
class GrpcAnswer:
    """The outcome of one OTLP/gRPC export: its status, message and trailers."""

    code: grpc.StatusCode
    details: str
    trailers: dict[str, Any]

    @property
    def retry_delay_s(self) -> int | None:
        """The RetryInfo delay, if the answer carries one."""
        raw = self.trailers.get("google.rpc.retryinfo-bin")
        return None if raw is None else RetryInfo.FromString(raw).retry_delay.seconds


@dataclass
class HostileService:
    """A running ``aeos serve`` (2 receiver workers) and how to reach and inspect it."""

    proc: subprocess.Popen[str]
    db: Database
    grpc_port: int
    http_port: int
    stderr: Path
    orgs: list[tuple[uuid.UUID, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def new_org(self, plan: str = "free") -> tuple[uuid.UUID, str]:
        """A new org and its ingest key."""
        with self.db.admin_engine().begin() as conn:
            org = admin.create_org(conn, f"org-{uuid.uuid4().hex[:8]}", plan)
        return org.org_id, org.ingest_key.plaintext

    def scalar(self, sql: str, **params: Any) -> Any:
        engine = create_engine(self.db.admin_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        finally:
            engine.dispose()

    def spans_of(self, org: uuid.UUID, trace_id: bytes) -> int:
        sql = "SELECT count(*) FROM spans WHERE org_id = :o AND trace_id = :t"
        return int(self.scalar(sql, o=org, t=trace_id))

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=ANSWER_TIMEOUT_S).text

    def refusals(self, reason: str) -> float:
        """``aeos_receiver_refusals_total`` summed over signals and transports."""
        return self.metric("aeos_receiver_refusals_total", f'reason="{reason}"')

    def metric(self, name: str, label: str = "") -> float:
        """A metric of ``/metrics`` summed over the series whose labels hold ``label``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith((f"{name}{{", f"{name} ")) and label in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def assert_ready(self) -> None:
        """Every worker answers /healthz 200 (new connections spread over the workers)."""
        for _ in range(6):
            with httpx.Client(timeout=ANSWER_TIMEOUT_S) as client:
                response = client.get(f"{self.url}/healthz")
            assert response.status_code == 200, response.text

    def stderr_text(self) -> str:
        return self.stderr.read_text(errors="replace")


def _start(
    url: Any, tmp: Path, overrides: dict[str, str]
) -> tuple[subprocess.Popen[str], int, int, Path]:
    grpc_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AEOS_", "OTEL_"))}
    env.update(SETTINGS, **overrides)
    env.update(
        AEOS_DATABASE_URL=url.render_as_string(hide_password=False),
        AEOS_APP_DB_PASSWORD=TEST_APP_PASSWORD,
        AEOS_DATA_DIR=str(tmp),
        AEOS_RECEIVER_GRPC_PORT=str(grpc_port),
        AEOS_RECEIVER_HTTP_PORT=str(http_port),
        AEOS_API_PORT=str(free_port()),
    )
    stderr = tmp / "stderr.log"
    with stderr.open("w") as err:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "aeos", "serve", "--only", "receiver"],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env,
        )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("Press Ctrl-C"):
            return proc, grpc_port, http_port, stderr
    proc.kill()
    raise AssertionError(f"aeos serve did not start: {stderr.read_text()}")


@pytest.fixture(scope="module", params=ENGINES)
def hostile(
    request: pytest.FixtureRequest,
    pg_server: PgServer,
    templates: dict[StorageEngine, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostileService]:
    """``aeos serve --only receiver`` with the suite's limits, on each engine."""
    yield from serve(request, pg_server, templates, tmp_path_factory)


def serve(
    request: pytest.FixtureRequest,
    pg_server: PgServer,
    templates: dict[StorageEngine, str],
    tmp_path_factory: pytest.TempPathFactory,
    **overrides: str,
) -> Iterator[HostileService]:
    """The body of a service fixture: the suite's settings but ``overrides``."""
    name = f"aeos_hostile_{uuid.uuid4().hex[:10]}"
    create_database(pg_server, name, _template(pg_server, templates, request.param))
    url = pg_server.admin_url.set(database=name)
    tmp = tmp_path_factory.mktemp("hostile")
    proc, grpc_port, http_port, stderr = _start(url, tmp, overrides)
    db = Database(url, TEST_APP_PASSWORD)
    try:
        yield HostileService(proc, db, grpc_port, http_port, stderr)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
        db.close()
        _drop_database(pg_server, name)


def normal_spans(n: int = 3, service: str = "victim") -> tuple[bytes, bytes]:
    """A normal export body made by the OpenTelemetry SDK, and its trace id."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("hostile-suite")
    with tracer.start_as_current_span("normal"):
        for i in range(n - 1):
            with tracer.start_as_current_span(f"normal-{i}"):
                pass
    spans = memory.get_finished_spans()
    trace_id = spans[0].context.trace_id.to_bytes(16, "big")
    return encode_spans(spans).SerializeToString(), trace_id


def post(url: str, key: str | None, body: bytes, **headers: str) -> httpx.Response:
    """One OTLP/HTTP export (protobuf unless ``content_type`` says otherwise)."""
    hdrs = {"content-type": headers.pop("content_type", PROTOBUF)}
    if key is not None:
        hdrs["authorization"] = f"Bearer {key}"
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    with httpx.Client(timeout=ANSWER_TIMEOUT_S) as client:
        return client.post(url, content=body, headers=hdrs)


def grpc_export(endpoint: str, key: str | None, body: bytes) -> GrpcAnswer:
    """One OTLP/gRPC traces export of a raw protobuf body, on a new channel."""
    metadata = [] if key is None else [("authorization", f"Bearer {key}")]
    with grpc.insecure_channel(endpoint) as channel:
        export = channel.unary_unary(TRACES_METHOD)  # bytes in, bytes out
        try:
            export(body, metadata=metadata, timeout=ANSWER_TIMEOUT_S)
        except grpc.RpcError as exc:
            trailers = dict(exc.trailing_metadata() or ())
            return GrpcAnswer(exc.code(), exc.details() or "", trailers)
    return GrpcAnswer(grpc.StatusCode.OK, "", {})


def status_message(response: httpx.Response) -> str:
    """The ``google.rpc.Status`` message of an error answer."""
    status = status_pb2.Status()
    status.ParseFromString(response.content)
    return str(status.message)


def partial(response: httpx.Response) -> tuple[int, str]:
    """(rejected spans, error message) of a traces success answer."""
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    return answer.partial_success.rejected_spans, answer.partial_success.error_message


def assert_refused(response: httpx.Response, status: int, needle: str = "") -> None:
    """A clear refusal: the status, a message saying why, a retry delay only for load."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    if status in (429, 503):
        assert int(response.headers["retry-after"]) >= 1
    else:
        assert "retry-after" not in response.headers
    assert needle in status_message(response)


def assert_partial(response: httpx.Response, rejected: int, needle: str) -> None:
    """A partial success naming ``rejected`` spans and why."""
    assert response.status_code == 200, (response.status_code, response.content[:300])
    count, message = partial(response)
    assert count == rejected
    assert needle in message


def alongside(svc: HostileService, attack: Callable[[], Any], over: str = "http") -> Any:
    """Runs ``attack`` together with a normal request of another org; checks the rest.

    The normal request goes ``over`` OTLP/HTTP (httpx) or OTLP/gRPC (the SDK's exporter).

    Returns:
        What ``attack`` returned (the caller checks it is a clear answer).
    """
    victim, key = svc.new_org("pro")
    normal_call, trace_id = _normal_request(svc, key, over)
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run(name: str, call: Callable[[], Any]) -> None:
        start.wait()
        try:
            results[name] = call()
        except Exception as exc:  # reported below, with the other side's outcome
            results[name] = exc

    threads = [
        threading.Thread(target=run, args=("attack", attack)),
        threading.Thread(target=run, args=("normal", normal_call)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    normal = results["normal"]
    if over == "grpc":
        assert normal == SpanExportResult.SUCCESS, normal
    else:
        assert isinstance(normal, httpx.Response), normal
        assert normal.status_code == 200, (normal.status_code, normal.content[:300])
        assert partial(normal) == (0, "")
    assert svc.spans_of(victim, trace_id) == 3
    svc.assert_ready()
    after, after_trace = normal_spans()
    assert post(f"{svc.url}/v1/traces", key, after).status_code == 200
    assert svc.spans_of(victim, after_trace) == 3
    if isinstance(results["attack"], Exception):
        raise results["attack"]
    return results["attack"]


def _normal_request(svc: HostileService, key: str, over: str) -> tuple[Callable[[], Any], bytes]:
    if over == "http":
        body, trace_id = normal_spans()
        return lambda: post(f"{svc.url}/v1/traces", key, body), trace_id
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "victim"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("hostile-suite").start_as_current_span("normal"):
        for i in range(2):
            with provider.get_tracer("hostile-suite").start_as_current_span(f"normal-{i}"):
                pass
    spans = memory.get_finished_spans()
    exporter = OTLPSpanExporter(
        endpoint=svc.grpc_endpoint, insecure=True, headers={"authorization": f"Bearer {key}"},
        timeout=int(ANSWER_TIMEOUT_S),
    )  # fmt: skip
    return lambda: exporter.export(spans), spans[0].context.trace_id.to_bytes(16, "big")


def spans_body(
    n: int = 1,
    attrs: dict[str, Any] | None = None,
    resource: dict[str, Any] | None = None,
    name: str = "op",
    **span_fields: Any,
) -> bytes:
    """An export request of ``n`` spans of one new trace (raw protobuf, any values)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    from tests.unit._otlp import kvs

    trace_id = uuid.uuid4().bytes
    now = time.time_ns()
    fields = {"trace_id": trace_id, "start_time_unix_nano": now, "end_time_unix_nano": now + 1000,
              **span_fields}  # fmt: skip
    spans = [
        Span(span_id=(i + 1).to_bytes(8, "big"), name=name, attributes=kvs(attrs or {}), **fields)
        for i in range(n)
    ]  # fmt: skip
    rs = ResourceSpans(
        resource=ProtoResource(attributes=kvs(resource or {"service.name": "attacker"})),
        scope_spans=[ScopeSpans(spans=spans)],
    )
    return bytes(ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString())

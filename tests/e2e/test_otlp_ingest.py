"""OTLP in, rows out: the real OpenTelemetry SDK exporters against a running ``aeos serve``."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Status, StatusCode

from semconv.signing import SigningAuth
from storage import DbRole, Scope, scoped_transaction
from tests.e2e.conftest import RunningService

pytestmark = pytest.mark.slow


def resource(agent: str, subsystem: str = "MOSAIC", version: str = "2.1.0") -> Resource:
    return Resource.create(
        {
            "service.name": f"svc-{agent}",
            "service.version": version,
            "aeos.agent.id": agent,
            "aeos.agent.name": f"Agent {agent}",
            "aeos.fleet.id": "fleet-a",
            "aeos.subsystem": subsystem,
            "aeos.org.hint": "some-other-org",  # never trusted
        }
    )


def tracer_provider(exporter: SpanExporter, agent: str) -> TracerProvider:
    provider = TracerProvider(resource=resource(agent))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def emit_task_run(provider: TracerProvider, run_id: str) -> None:
    """A MOSAIC task run: routing, a handoff, two LLM calls, a UCE read, an explicit cost."""
    tracer = provider.get_tracer("aeos.test")
    with tracer.start_as_current_span(
        "task_run plan-trip", attributes={"mosaic.task_run.id": run_id, "mosaic.task.id": "task-7"}
    ) as root:
        with tracer.start_as_current_span(
            "routing", attributes={"mosaic.routing.route": "planner", "mosaic.task_run.id": run_id}
        ):
            pass
        with tracer.start_as_current_span(
            "chat claude-sonnet-4",
            attributes={
                "mosaic.task_run.id": run_id,
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-20250514",
                "gen_ai.usage.input_tokens": 12000,
                "gen_ai.usage.output_tokens": 800,
                "gen_ai.usage.cache_read.input_tokens": 10000,
                "gen_ai.usage.cache_creation.input_tokens": 1000,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            attributes={
                "mosaic.task_run.id": run_id,
                "gen_ai.system": "openai",  # deprecated names are accepted
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.prompt_tokens": 5000,
                "gen_ai.usage.completion_tokens": 1000,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "uce.read",
            attributes={"uce.operation": "read", "uce.context.id": "ctx-1", "uce.cache.hit": True},
        ) as uce:
            uce.set_status(Status(StatusCode.ERROR, "cache backend timeout"))
        with tracer.start_as_current_span(
            "tool call", attributes={"mosaic.task_run.id": run_id, "aeos.cost.usd": 0.5,
                                     "gen_ai.provider.name": "internal", "gen_ai.request.model": "x"}
        ):  # fmt: skip
            pass
        root.set_status(Status(StatusCode.OK))


# claude-sonnet-4: 1,000 uncached at $3/M + 10,000 cache reads at $0.30/M
#   + 1,000 cache writes at $3.75/M + 800 output at $15/M; gpt-4o-mini: 5,000 at $0.15/M
#   + 1,000 at $0.60/M; the tool call: an explicit $0.5.
CLAUDE = Decimal("0.02175")
GPT_MINI = Decimal("0.00135")
EXPLICIT = Decimal("0.5")


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_grpc_sdk_exporter_lands_mapped_rows(service: RunningService) -> None:
    org, key = service.new_org()
    exporter = GrpcSpanExporter(endpoint=service.grpc_endpoint, insecure=True, headers=auth(key))
    provider = tracer_provider(exporter, "planner-1")
    emit_task_run(provider, "run-grpc")
    provider.shutdown()
    assert service.scalar("SELECT count(*) FROM spans WHERE org_id = :o", o=org) == 6
    run = service.query(
        "SELECT status, duration_ms, cost_usd, agent_id, task_id FROM task_runs WHERE org_id = :o",
        o=org,
    )
    assert run[0].status == "succeeded"
    assert run[0].duration_ms > 0
    assert run[0].agent_id == "planner-1"
    assert run[0].task_id == "task-7"
    assert run[0].cost_usd == CLAUDE + GPT_MINI + EXPLICIT
    costs = dict(
        service.query("SELECT model, cost_usd FROM cost_line_items WHERE org_id = :o", o=org)
    )
    assert costs == {"claude-sonnet-4-20250514": CLAUDE, "gpt-4o-mini": GPT_MINI, "x": EXPLICIT}
    sources = sorted(
        r[0]
        for r in service.query("SELECT cost_source FROM cost_line_items WHERE org_id = :o", o=org)
    )
    assert sources == ["explicit", "priced", "priced"]
    llm = service.query(
        "SELECT gen_ai_provider, gen_ai_model, input_tokens, output_tokens, subsystem, agent_id, fleet_id "
        "FROM spans WHERE org_id = :o AND name = 'chat gpt-4o-mini'",
        o=org,
    )[0]
    assert tuple(llm) == ("openai", "gpt-4o-mini", 5000, 1000, "MOSAIC", "planner-1", "fleet-a")
    trace = service.query(
        "SELECT span_count, error_count, root_span_name FROM traces WHERE org_id = :o", o=org
    )
    assert tuple(trace[0]) == (6, 1, "task_run plan-trip")
    agent = service.query(
        "SELECT version, fleet_id, subsystem, name FROM agents WHERE org_id = :o", o=org
    )
    assert tuple(agent[0]) == ("2.1.0", "fleet-a", "MOSAIC", "Agent planner-1")
    # Unmapped attributes are kept.
    assert (
        service.scalar(
            "SELECT attributes->>'mosaic.routing.route' FROM spans WHERE org_id = :o AND name = 'routing'",
            o=org,
        )
        == "planner"
    )
    # The payload's org hint changed nothing: no row landed anywhere else.
    assert service.scalar("SELECT count(*) FROM spans WHERE org_id <> :o AND name = 'routing' "
                          "AND attributes->>'mosaic.task_run.id' = 'run-grpc'", o=org) == 0  # fmt: skip


def test_http_protobuf_exporters_for_traces_logs_and_metrics(service: RunningService) -> None:
    org, key = service.new_org()
    base = service.http_endpoint
    provider = tracer_provider(
        HttpSpanExporter(endpoint=f"{base}/v1/traces", headers=auth(key)), "worker-1"
    )
    emit_task_run(provider, "run-http")
    provider.shutdown()
    assert service.scalar("SELECT count(*) FROM spans WHERE org_id = :o", o=org) == 6
    assert (
        service.scalar("SELECT cost_usd FROM task_runs WHERE org_id = :o", o=org)
        == CLAUDE + GPT_MINI + EXPLICIT
    )

    logs = LoggerProvider(resource=resource("worker-1", "DAMN", "2.2.0"))
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(HttpLogExporter(endpoint=f"{base}/v1/logs", headers=auth(key)))
    )
    logger = logs.get_logger("aeos.test")
    from opentelemetry._logs import SeverityNumber

    logger.emit(body="queue is backing up", severity_number=SeverityNumber.WARN,
                attributes={"event.name": "damn.queue.backlog", "damn.queue.name": "main"})  # fmt: skip
    logger.emit(body="beat", severity_number=SeverityNumber.INFO, event_name="damn.agent.heartbeat",
                attributes={"damn.agent.status": "degraded"})  # fmt: skip
    logs.shutdown()
    events = service.query(
        "SELECT severity, event_type, message, subsystem FROM events WHERE org_id = :o ORDER BY time",
        o=org,
    )
    assert [tuple(e) for e in events] == [
        ("warn", "damn.queue.backlog", "queue is backing up", "DAMN"),
        ("info", "damn.agent.heartbeat", "beat", "DAMN"),
    ]
    agent = service.query(
        "SELECT status, last_heartbeat_at IS NOT NULL, version FROM agents WHERE org_id = :o", o=org
    )
    assert tuple(agent[0]) == ("degraded", True, "2.2.0")

    reader = PeriodicExportingMetricReader(
        HttpMetricExporter(endpoint=f"{base}/v1/metrics", headers=auth(key)),
        export_interval_millis=60_000,
    )
    meters = MeterProvider(resource=resource("worker-1", "DAMN"), metric_readers=[reader])
    meter = meters.get_meter("aeos.test")
    depth = meter.create_gauge("damn.queue.depth", unit="{task}")
    depth.set(42, {"damn.queue.name": "main"})
    latency = meter.create_histogram("uce.operation.duration", unit="s")
    for v in (0.01, 0.02, 0.5):
        latency.record(v, {"uce.operation": "read"})
    meters.shutdown()
    points = dict(service.query(
        "SELECT metric, coalesce(value, count::float8) FROM metric_points WHERE org_id = :o", o=org
    ))  # fmt: skip
    assert points == {"damn.queue.depth": 42.0, "uce.operation.duration": 3.0}
    hist = service.query(
        "SELECT sum, kind, bucket_counts FROM metric_points WHERE org_id = :o AND kind = 'histogram'",
        o=org,
    )
    assert hist[0].sum == pytest.approx(0.53)
    assert sum(hist[0].bucket_counts) == 3


def _json_request(trace_hex: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "aeos.agent.id", "value": {"stringValue": "json-agent"}}]
                },
                "scopeSpans": [{"scope": {"name": "raw"}, "spans": spans}],
            }
        ]
    }


def _span_json(trace_hex: str, span_hex: str, name: str) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "traceId": trace_hex, "spanId": span_hex, "name": name, "kind": 2,
        "startTimeUnixNano": str(now - 5_000_000), "endTimeUnixNano": str(now),
        "attributes": [{"key": "uce.operation", "value": {"stringValue": "write"}}],
        "status": {"code": 1},
    }  # fmt: skip


def test_raw_json_with_partial_success_and_retry_dedupe(service: RunningService) -> None:
    org, key = service.new_org()
    trace_hex = uuid.uuid4().hex
    body = _json_request(trace_hex, [
        _span_json(trace_hex, "00f067aa0ba902b7", "good"),
        _span_json(trace_hex[:10], "00f067aa0ba902b8", "bad trace id"),
    ])  # fmt: skip
    for attempt in range(2):  # the second is an at-least-once retry of the first
        response = httpx.post(
            f"{service.http_endpoint}/v1/traces", json=body, headers=auth(key), timeout=10
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        partial = response.json()["partialSuccess"]
        assert int(partial["rejectedSpans"]) == 1, attempt
        assert "trace" in partial["errorMessage"].lower()
    rows = service.query(
        "SELECT name, encode(trace_id, 'hex'), encode(span_id, 'hex') FROM spans WHERE org_id = :o",
        o=org,
    )
    assert [tuple(r) for r in rows] == [("good", trace_hex, "00f067aa0ba902b7")]
    assert service.scalar("SELECT span_count FROM traces WHERE org_id = :o", o=org) == 1
    # The rollups (tables, or real-time continuous aggregates) counted the span once.
    for relation in ("span_red_1m", "org_red_1h", "span_red_1d"):
        total = service.scalar(f"SELECT sum(span_count) FROM {relation} WHERE org_id = :o", o=org)
        assert total == 1, relation


def test_gzip_json_is_accepted(service: RunningService) -> None:
    org, key = service.new_org()
    trace_hex = uuid.uuid4().hex
    body = gzip.compress(
        json.dumps(
            _json_request(trace_hex, [_span_json(trace_hex, "1111111111111111", "zipped")])
        ).encode()
    )
    response = httpx.post(
        f"{service.http_endpoint}/v1/traces", content=body,
        headers={**auth(key), "content-type": "application/json", "content-encoding": "gzip"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert service.scalar("SELECT name FROM spans WHERE org_id = :o", o=org) == "zipped"


@pytest.mark.parametrize(
    ("headers", "body", "status", "needle"),
    [
        ({}, b"", 401, "authorization"),
        ({"authorization": "Bearer aeos_ik_AAAAAAAA_nope"}, b"", 401, "unknown or revoked"),
        ({"authorization": "Basic xyz"}, b"", 401, "Bearer"),
        ("KEY", b"\xff\xfe garbage", 400, ""),
        ("KEY", b"x" * (5 * 1024 * 1024), 413, "larger than"),
    ],
)
def test_http_errors(
    service: RunningService, headers: Any, body: bytes, status: int, needle: str
) -> None:
    _, key = service.new_org()
    hdrs = auth(key) if headers == "KEY" else dict(headers)
    hdrs["content-type"] = "application/x-protobuf"
    response = httpx.post(
        f"{service.http_endpoint}/v1/traces", content=body, headers=hdrs, timeout=30
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/x-protobuf"
    from google.rpc import status_pb2

    detail = status_pb2.Status.FromString(response.content)
    assert needle in detail.message


def test_unsupported_content_type(service: RunningService) -> None:
    _, key = service.new_org()
    response = httpx.post(
        f"{service.http_endpoint}/v1/traces",
        content=b"x",
        headers={**auth(key), "content-type": "text/plain"},
    )
    assert response.status_code == 415


def _grpc_stub(service: RunningService) -> Iterator[Any]:
    channel = grpc.insecure_channel(service.grpc_endpoint)
    try:
        yield trace_service_pb2_grpc.TraceServiceStub(channel)
    finally:
        channel.close()


def test_grpc_errors(service: RunningService) -> None:
    _, key = service.new_org()
    channel = grpc.insecure_channel(service.grpc_endpoint)
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    request = trace_service_pb2.ExportTraceServiceRequest()
    with pytest.raises(grpc.RpcError) as missing:
        stub.Export(request, metadata=[])
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as bad:
        stub.Export(request, metadata=[("authorization", "Bearer aeos_ik_AAAAAAAA_nope")])
    assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED
    huge = trace_service_pb2.ExportTraceServiceRequest()
    huge.resource_spans.add().scope_spans.add().spans.add(name="x" * (5 * 1024 * 1024))
    with pytest.raises(grpc.RpcError) as large:
        stub.Export(huge, metadata=list(auth(key).items()))
    assert large.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    ok = stub.Export(request, metadata=list(auth(key).items()))
    assert not ok.HasField("partial_success")
    raw = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.RpcError) as garbage:
        raw(b"\xff\xfe not protobuf", metadata=list(auth(key).items()))
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()


def test_revoked_key_is_refused(service: RunningService) -> None:
    _, key = service.new_org()
    with scoped_transaction(service.db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        from storage import admin

        admin.revoke_key(
            conn, key.split("_")[0] + "_" + key.split("_")[1] + "_" + key.split("_")[2]
        )
    response = httpx.post(
        f"{service.http_endpoint}/v1/traces",
        content=b"",
        headers={**auth(key), "content-type": "application/x-protobuf"},
    )
    assert response.status_code == 401


def test_signed_requests(service: RunningService) -> None:
    org, key = service.new_org(require_signature=True)
    trace_hex = uuid.uuid4().hex
    body = json.dumps(
        _json_request(trace_hex, [_span_json(trace_hex, "2222222222222222", "signed")])
    ).encode()
    url = f"{service.http_endpoint}/v1/traces"
    headers = {**auth(key), "content-type": "application/json"}
    assert httpx.post(url, content=body, headers=headers).status_code == 401  # unsigned
    session = requests.Session()
    session.auth = SigningAuth(key)
    signed = session.post(url, data=body, headers=headers, timeout=10)
    assert signed.status_code == 200, signed.text
    used = str(signed.request.headers["x-aeos-signature"])
    replay = httpx.post(
        url,
        content=body,
        headers={**headers, "x-aeos-signature": used},
    )
    assert replay.status_code == 401
    assert "replay" in replay.text or "already" in replay.text
    tampered = httpx.post(
        url,
        content=body + b" ",
        headers={**headers, "x-aeos-signature": used},
    )
    assert tampered.status_code == 401
    # The SDK's HTTP exporter signs each export through a requests session.
    exporter = HttpSpanExporter(endpoint=url, headers=auth(key), session=session)
    provider = tracer_provider(exporter, "signer")
    with provider.get_tracer("t").start_as_current_span("via sdk"):
        pass
    provider.shutdown()
    names = sorted(r[0] for r in service.query("SELECT name FROM spans WHERE org_id = :o", o=org))
    assert names == ["signed", "via sdk"]


def test_prometheus_metrics_count_items(service: RunningService) -> None:
    _, key = service.new_org()
    trace_hex = uuid.uuid4().hex
    body = _json_request(trace_hex, [_span_json(trace_hex, "00f067aa0ba902b7", "counted")])
    # One keep-alive connection: the export and /metrics reach the same worker process,
    # whose counters /metrics shows (each worker counts its own).
    with httpx.Client(base_url=service.http_endpoint, timeout=10) as client:
        assert client.post("/v1/traces", json=body, headers=auth(key)).status_code == 200
        text_ = client.get("/metrics").text
    assert "aeos_receiver_items_total" in text_
    assert 'outcome="accepted"' in text_
    assert "aeos_writer_commit_seconds_bucket" in text_


def test_platform_health_rows_are_written(service: RunningService) -> None:
    _, key = service.new_org()
    trace_hex = uuid.uuid4().hex
    body = _json_request(trace_hex, [_span_json(trace_hex, "3333333333333333", "healthy")])
    assert (
        httpx.post(f"{service.http_endpoint}/v1/traces", json=body, headers=auth(key)).status_code
        == 200
    )
    accepted = service.wait_for(
        "SELECT sum(accepted) > 0 FROM platform_health WHERE signal = 'traces'", True, timeout=10
    )
    assert accepted is True, service.query("SELECT * FROM platform_health")
    instances = service.scalar("SELECT count(DISTINCT instance) FROM platform_health")
    assert instances >= 1


def test_only_the_receiver_can_be_run(service: RunningService, tmp_path: Path) -> None:
    from tests.e2e.conftest import start_service, stop_service

    proc, env, _, (_, http_port, api_port) = start_service(service.db.admin_url, tmp_path)
    stop_service(proc)
    env["AEOS_RECEIVER_WORKERS"] = "1"
    only = subprocess.Popen([sys.executable, "-m", "aeos", "serve", "--only", "receiver"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert only.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = only.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        assert any("OTLP/gRPC" in line for line in lines)
        assert not any("Query API" in line for line in lines)
        _, key = service.new_org()
        ok = httpx.post(f"http://127.0.0.1:{http_port}/v1/traces", content=b"",
                        headers={**auth(key), "content-type": "application/x-protobuf"})  # fmt: skip
        assert ok.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2)
    finally:
        only.terminate()
        only.communicate(timeout=60)


def test_key_from_otel_exporter_otlp_headers(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, key = service.new_org()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{key}")
    exporter = HttpSpanExporter(endpoint=f"{service.http_endpoint}/v1/traces")
    provider = tracer_provider(exporter, "env-configured")
    with provider.get_tracer("t").start_as_current_span("from env"):
        pass
    provider.shutdown()
    assert service.scalar("SELECT name FROM spans WHERE org_id = :o", o=org) == "from env"

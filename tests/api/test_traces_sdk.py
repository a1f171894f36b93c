"""Traces sent by the real OpenTelemetry SDK exporters to a running ``aeos serve`` come back
span for span through ``/v1/traces/{id}``, Jaeger v1 and api_v3: ids, parents, times to
the microsecond, attributes, resource, events, links, kind and status; the task run's
trace has its LLM calls' costs; tenancy holds in both APIs (on each engine)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from query_api.models.traces import TaskRunTracePublic, TraceViewPublic
from storage import admin
from tests import _jaeger_model as model
from tests.e2e.conftest import RunningService, service  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


def keys(svc: RunningService) -> tuple[Any, str, str]:
    with svc.db.admin_engine().begin() as conn:
        org = admin.create_org(conn, f"sdk-{time.time_ns()}", "pro")
    return org.org_id, org.ingest_key.plaintext, org.admin_key.plaintext


def staff_key(svc: RunningService) -> str:
    with svc.db.admin_engine().begin() as conn:
        admin.create_org(conn, f"alias-{time.time_ns()}", "enterprise")
        name = admin.list_orgs(conn)[-1].name
        return admin.create_key(conn, name, "alias_support").plaintext


def emit(exporter: Any, service_name: str, run_id: str) -> list[ReadableSpan]:
    """A task run with typed attributes, events, a link, a failing child and an LLM call."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(
        {"service.name": service_name, "aeos.agent.id": "agent-7", "deployment.environment": "test"}))  # fmt: skip
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("aeos.sdk-test", "1.2.3")
    with tracer.start_as_current_span("task_run plan", kind=SpanKind.SERVER, attributes={
        "mosaic.task_run.id": run_id, "mosaic.task.id": "task-1", "flag": True, "ratio": 0.25,
        "count": 42, "tags": ["a", "b"]}) as root:  # fmt: skip
        with tracer.start_as_current_span("chat claude", kind=SpanKind.CLIENT, attributes={
            "mosaic.task_run.id": run_id, "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-20250514",
            "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 300}) as chat:  # fmt: skip
            chat.add_event("retry", {"attempt": 2, "reason": "overloaded"})
            chat.add_event("done", timestamp=time.time_ns() + 123_456)
        with tracer.start_as_current_span(
            "tool call", links=[Link(root.get_span_context(), {"why": "fan-in"})]
        ) as tool:
            tool.set_status(Status(StatusCode.ERROR, "tool exploded"))
        root.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.fixture(scope="module")
def sent(service: RunningService) -> Iterator[dict[str, Any]]:  # noqa: F811
    a, ingest_a, admin_a = keys(service)
    b, ingest_b, admin_b = keys(service)
    spans_a = emit(Http(endpoint=f"{service.http_endpoint}/v1/traces",
                        headers={"authorization": f"Bearer {ingest_a}"}), "planner", "run-a")  # fmt: skip
    spans_b = emit(Grpc(endpoint=service.grpc_endpoint, insecure=True,
                        headers={"authorization": f"Bearer {ingest_b}"}), "planner", "run-b")  # fmt: skip
    for org in (a, b):
        assert service.wait_for("SELECT count(*) FROM spans WHERE org_id = :o", 3, o=org) == 3
        assert (
            service.wait_for("SELECT count(*) FROM cost_line_items WHERE org_id = :o", 1, o=org)
            == 1
        )
    with httpx.Client(base_url=f"http://127.0.0.1:{service.api_port}", timeout=30) as client:
        yield {"client": client, "a": (a, admin_a, spans_a), "b": (b, admin_b, spans_b),
               "staff": staff_key(service)}  # fmt: skip


def tid(spans: list[ReadableSpan]) -> str:
    ctx = spans[0].context
    assert ctx is not None
    return f"{ctx.trace_id:032x}"


def plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def sid(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", **extra}


def test_v1_trace_span_for_span(sent: dict[str, Any]) -> None:
    _, key, spans = sent["a"]
    r = sent["client"].get(f"/v1/traces/{tid(spans)}", headers=auth(key))
    assert r.status_code == 200, r.text
    body = r.json()
    TraceViewPublic.model_validate(body)  # the answer is what the OpenAPI document says
    got = {s["span_id"]: s for s in body["spans"]}
    assert set(got) == {sid(s) for s in spans}
    for span in spans:
        g = got[sid(span)]
        assert g["name"] == span.name
        assert g["parent_span_id"] == (f"{span.parent.span_id:016x}" if span.parent else None)
        assert span.start_time is not None
        assert span.end_time is not None
        assert (g["start_us"], g["end_us"]) == (span.start_time // 1000, span.end_time // 1000)
        assert g["kind"] == span.kind.name.lower()
        assert g["status"]["code"] == span.status.status_code.name.lower()
        assert g["status"]["message"] == span.status.description
        assert g["attributes"] == {k: plain(v) for k, v in (span.attributes or {}).items()}
        assert g["resource"] == dict(span.resource.attributes)
        assert g["scope_name"] == "aeos.sdk-test"
        assert [(e["name"], e["time_us"], e["attributes"]) for e in g["events"]] == [
            (e.name, e.timestamp // 1000, dict(e.attributes or {})) for e in span.events]  # fmt: skip
        assert [(x["trace_id"], x["span_id"]) for x in g["links"]] == [
            (f"{x.context.trace_id:032x}", f"{x.context.span_id:016x}") for x in span.links]  # fmt: skip
    totals = body["totals"]
    assert (totals["span_count"], totals["error_count"], totals["llm_calls"]) == (3, 1, 1)
    assert totals["input_tokens"] == 2000
    assert float(totals["cost_usd"]) > 0
    assert sum(seg["duration_us"] for seg in body["critical_path"]) == totals["duration_us"]
    assert body["summary"]["spans_kept"] is True
    assert body["notice"] is None


def test_jaeger_v1_and_v3_span_for_span(sent: dict[str, Any]) -> None:
    client, (_, key, spans) = sent["client"], sent["a"]
    r = client.get(f"/jaeger/api/traces/{tid(spans)}", headers=auth(key))
    (trace,) = model.traces(r.json())
    got = {s.spanID: s for s in trace.spans}
    for span in spans:
        g = got[sid(span)]
        assert span.start_time is not None
        assert span.end_time is not None
        assert g.startTime == span.start_time // 1000
        assert g.duration == span.end_time // 1000 - span.start_time // 1000
        tags = {t.key: t.value for t in g.tags}
        for k, v in (span.attributes or {}).items():
            assert tags[k] == (v if not isinstance(v, tuple) else '["a","b"]'), k
        assert tags["otel.scope.name"] == "aeos.sdk-test"
        assert tags.get("span.kind") == span.kind.name.lower()
        parent = [(x.refType, x.spanID) for x in g.references if x.refType == "CHILD_OF"]
        assert parent == ([("CHILD_OF", f"{span.parent.span_id:016x}")] if span.parent else [])
        follows = [x.spanID for x in g.references if x.refType == "FOLLOWS_FROM"]
        assert follows == [f"{x.context.span_id:016x}" for x in span.links]
        assert [(log.timestamp, log.fields[0].value) for log in g.logs] == [
            (e.timestamp // 1000, e.name) for e in span.events]  # fmt: skip
        if span.status.status_code is StatusCode.ERROR:
            assert tags["error"] is True
            assert tags["otel.status_description"] == "tool exploded"
        process = trace.processes[g.processID]
        assert process.serviceName == "planner"
        assert {t.key: t.value for t in process.tags}["aeos.agent.id"] == "agent-7"
    r = client.get(f"/jaeger/api/v3/traces/{tid(spans)}", headers=auth(key))
    otlp = {s["spanId"]: s for rs in r.json()["result"]["resourceSpans"]
            for ss in rs["scopeSpans"] for s in ss["spans"]}  # fmt: skip
    for span in spans:
        s = otlp[sid(span)]
        assert span.start_time is not None
        assert s["startTimeUnixNano"] == str(span.start_time // 1000 * 1000)
        assert s["kind"] == span.kind.value + 1  # the SDK's enum is OTLP's minus one
        assert s["status"]["code"] == span.status.status_code.value
        assert [e["name"] for e in s["events"]] == [e.name for e in span.events]


def test_task_run_trace_has_costs_and_the_critical_path(sent: dict[str, Any]) -> None:
    client, (_, key, spans) = sent["client"], sent["a"]
    r = client.get("/v1/task-runs/run-a/trace", headers=auth(key))
    assert r.status_code == 200, r.text
    body = r.json()
    TaskRunTracePublic.model_validate(body)
    assert body["task_run"]["trace_id"] == tid(spans)
    (call,) = body["trace"]["llm_calls"]
    chat = next(s for s in spans if s.name == "chat claude")
    assert call["span_id"] == sid(chat)
    assert call["model"] == "claude-sonnet-4-20250514"
    assert (call["tokens_in"], call["tokens_out"]) == (2000, 300)
    assert call["cost_usd"] == body["task_run"]["cost_usd"]
    on_path = {c["span_id"] for c in body["trace"]["critical_path_contributions"]}
    assert sid(chat) in on_path
    assert client.get("/v1/task-runs/run-b/trace", headers=auth(key)).status_code == 404


def test_tenancy_and_search_in_both_apis(sent: dict[str, Any]) -> None:
    client = sent["client"]
    (a, key_a, spans_a), (_, key_b, spans_b) = sent["a"], sent["b"]
    for path in (f"/v1/traces/{tid(spans_b)}", f"/jaeger/api/traces/{tid(spans_b)}",
                 f"/jaeger/api/v3/traces/{tid(spans_b)}"):  # fmt: skip
        assert client.get(path, headers=auth(key_a)).status_code == 404, path
        assert client.get(path, headers=auth(key_b)).status_code == 200, path
    r = client.get("/v1/traces", params={"service": "planner", "operation": "tool call"},
                   headers=auth(key_a))  # fmt: skip
    assert [t["trace_id"] for t in r.json()["data"]] == [tid(spans_a)]
    r = client.get("/v1/traces", params={"service": "planner", "attr": "gen_ai.provider.name:anthropic"},
                   headers=auth(key_a))  # fmt: skip
    assert [t["trace_id"] for t in r.json()["data"]] == [tid(spans_a)]
    r = client.get("/jaeger/api/traces", params={"service": "planner", "lookback": "1h"},
                   headers=auth(key_b))  # fmt: skip
    assert [t.traceID for t in model.traces(r.json())] == [tid(spans_b)]
    staff = sent["staff"]
    r = client.get(f"/v1/staff/orgs/{a}/traces/{tid(spans_a)}", headers=auth(staff))
    assert r.status_code == 200
    assert (
        client.get(f"/v1/staff/orgs/{a}/traces/{tid(spans_b)}", headers=auth(staff)).status_code
        == 404
    )
    r = client.get("/jaeger/api/traces", params={"service": "planner", "lookback": "1h"},
                   headers=auth(staff))  # fmt: skip
    assert {t.traceID for t in model.traces(r.json())} >= {tid(spans_a), tid(spans_b)}
    r = client.get("/v1/traces", params={"start": "2026-01-01T00:00:00Z"}, headers=auth(key_a))
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/query-too-broad")
    assert "name a service" in r.json()["detail"]

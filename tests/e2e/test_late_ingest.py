"""Late spans and retried exports, older than the compression age, through ``aeos serve``.

On TimescaleDB the columnstore policy compresses raw chunks after 2 days (cost line items
after 14), so spans that arrive days late, and retries of exports that were stored days
ago, go into compressed chunks. They must be stored once, and the rows derived from them
(trace summaries, task runs, cost line items) must count them once, as on uncompressed
chunks. The test runs in both job states (``tests.conftest``): in ``jobs-ran`` every
policy has run, so the first export is compressed before the late ones arrive.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, Status, StatusCode, use_span

from storage import admin
from tests.conftest import JOBS_RAN, settle
from tests.e2e.conftest import RunningService

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("background_jobs")]

DAY_NS = 86_400 * 10**9
SECOND_NS = 10**9


def _org(service: RunningService) -> tuple[uuid.UUID, str]:
    """An org that keeps every span (100 %) for 60 days: the service's own sampling sweep
    and retention job must not remove what the test sends."""
    name = f"late-{uuid.uuid4().hex[:8]}"
    with service.db.admin_engine().begin() as conn:
        org = admin.create_org(conn, name, "enterprise")
        admin.set_trace_sample_percent(conn, name, "100")
        admin.set_retention(conn, name, {"spans": 60})
    return org.org_id, org.ingest_key.plaintext


def _spans(run_id: str, start_ns: int, *, error: bool, llm: bool) -> list[ReadableSpan]:
    """A task run's root span and a child (an LLM call if ``llm``), ``start_ns`` back."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"aeos.agent.id": "late-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("aeos.test.late")
    attrs: dict[str, Any] = {"mosaic.task_run.id": run_id}
    root = tracer.start_span("task_run late", attributes=attrs, start_time=start_ns)
    child_attrs = dict(attrs)
    if llm:
        child_attrs |= {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1_000_000,
            "gen_ai.usage.output_tokens": 0,
        }
    with use_span(root, end_on_exit=False):
        child = tracer.start_span("chat", attributes=child_attrs, start_time=start_ns + SECOND_NS)
        if error:
            child.set_status(Status(StatusCode.ERROR, "late failure"))
        child.end(end_time=start_ns + 2 * SECOND_NS)
    root.end(end_time=start_ns + 3 * SECOND_NS)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _export(service: RunningService, key: str, spans: Sequence[ReadableSpan]) -> None:
    exporter = HttpSpanExporter(
        endpoint=f"{service.http_endpoint}/v1/traces",
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def _compressed(service: RunningService, table: str, at_ns: int) -> bool:
    return bool(
        service.scalar(
            "SELECT bool_and(is_compressed) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = :t AND range_start <= to_timestamp(:s) "
            "AND range_end > to_timestamp(:s)",
            t=table,
            s=at_ns / 1e9,
        )
    )


def test_late_spans_and_retries_into_compressed_chunks_are_stored_and_counted_once(
    service: RunningService, job_state: str
) -> None:
    timescale = service.scalar("SELECT value FROM aeos_meta WHERE key = 'storage_engine'")
    org, key = _org(service)
    now = service.scalar("SELECT (extract(epoch FROM now()) * 1e9)::bigint")
    first_at, late_at = now - 4 * DAY_NS, now - 25 * DAY_NS
    first = _spans("run-early", first_at, error=False, llm=True)
    _export(service, key, first)
    settle(service.db)  # jobs-ran: every chunk older than 2 days is compressed now
    if timescale == "timescale" and job_state == JOBS_RAN:  # the harness did what it says
        assert _compressed(service, "spans", first_at)

    # Days late: more spans of the first trace (one fails), a trace 25 days old; each
    # export retried, and the first export retried too.
    trace_id = first[0].context.trace_id
    more = _spans("run-early", first_at + 10 * SECOND_NS, error=True, llm=False)
    more = [_with_trace(s, trace_id) for s in more]
    older = _spans("run-old", late_at, error=False, llm=True)
    for batch in (more, older, more, older, first):
        _export(service, key, batch)

    spans = service.query(
        "SELECT encode(trace_id, 'hex'), count(*), count(DISTINCT span_id) FROM spans "
        "WHERE org_id = :o GROUP BY 1",
        o=org,
    )
    by_trace = {t: (n, distinct) for t, n, distinct in spans}
    assert by_trace == {f"{trace_id:032x}": (4, 4), f"{older[0].context.trace_id:032x}": (2, 2)}
    traces = service.query(
        "SELECT encode(trace_id, 'hex'), span_count, error_count, start_time <= end_time "
        "FROM traces WHERE org_id = :o ORDER BY 1",
        o=org,
    )
    assert {(t, n, e) for t, n, e, _ in traces} == {
        (f"{trace_id:032x}", 4, 1),
        (f"{older[0].context.trace_id:032x}", 2, 0),
    }
    runs = service.query(
        "SELECT task_run_id, cost_usd, (extract(epoch FROM started_at) * 1e9)::bigint "
        "FROM task_runs WHERE org_id = :o",
        o=org,
    )
    assert sorted(tuple(r) for r in runs) == [
        ("run-early", Decimal("0.15"), first_at),
        ("run-old", Decimal("0.15"), late_at),
    ]
    costs = service.query(
        "SELECT count(*), sum(cost_usd) FROM cost_line_items WHERE org_id = :o", o=org
    )
    assert tuple(costs[0]) == (2, Decimal("0.3"))  # 1 M input tokens at $0.15/M, twice


def _with_trace(span: ReadableSpan, trace_id: int) -> ReadableSpan:
    """``span`` moved into trace ``trace_id`` (the late half of an earlier trace)."""
    ctx = span.context
    moved = SpanContext(trace_id, ctx.span_id, ctx.is_remote, ctx.trace_flags, ctx.trace_state)
    parent = span.parent
    if parent is not None:
        parent = SpanContext(trace_id, parent.span_id, parent.is_remote, parent.trace_flags)
    return ReadableSpan(
        name=span.name, context=moved, parent=parent, resource=span.resource,
        attributes=span.attributes, events=span.events, links=span.links, kind=span.kind,
        status=span.status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )  # fmt: skip

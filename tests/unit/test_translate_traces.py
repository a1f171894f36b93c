"""OTLP traces → spans, events, task runs, LLM calls and agent sightings."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    InstrumentationScope,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from otlp_receiver._decode import JSON, PROTOBUF, decode_traces
from otlp_receiver._json_traces import JsonRequest
from otlp_receiver._lite import LiteTraces, decode_traces_fast
from otlp_receiver._translate import Limits, Translation, translate_traces
from semconv.helpers import agent_resource, llm_call_span, record_llm_usage, task_run_span
from tests.unit._otlp import kvs

ORG = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
TRACE = bytes(range(1, 17))
SPAN = bytes(range(1, 9))
T0 = 1_700_000_000_000_000_000


def span(n: int = 1, **fields: Any) -> Span:
    """A valid span (ids derived from ``n``), with ``fields`` replaced."""
    attrs = fields.pop("attributes", {})
    base: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": n.to_bytes(8, "big"),
        "name": f"span-{n}",
        "kind": Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": T0 + n,
        "end_time_unix_nano": T0 + n + 1000,
    }
    base.update(fields)
    return Span(attributes=kvs(attrs), **base)


def request(
    *spans: Span, resource: dict[str, Any] | None = None, scope: str = "lib"
) -> ExportTraceServiceRequest:
    res = ProtoResource(attributes=kvs(resource if resource is not None else AGENT))
    scope_spans = ScopeSpans(scope=InstrumentationScope(name=scope), spans=spans)
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=res, scope_spans=[scope_spans])]
    )


AGENT = {"aeos.agent.id": "agent-1", "service.name": "svc", "aeos.subsystem": "MOSAIC"}


def translate(req: ExportTraceServiceRequest, limits: Limits | None = None) -> Translation:
    """The reference translation, checked against the receiver's fast paths.

    Protobuf: the lite decoder. OTLP/JSON (``otlp_json``): the msgspec decoder, or the
    reference one for what it does not take (NaN, 19-digit ints...); either way the
    same rows as the reference decoder's request gives.
    """
    reference = translate_traces(req, ORG, limits) if limits else translate_traces(req, ORG)
    lite = decode_traces_fast(req.SerializeToString(), PROTOBUF)
    assert isinstance(lite, LiteTraces)
    fast = translate_traces(lite, ORG, limits) if limits else translate_traces(lite, ORG)
    assert fast == reference
    body = otlp_json(req)
    via_json = decode_traces(body, JSON)
    expected = (
        translate_traces(via_json, ORG, limits) if limits else translate_traces(via_json, ORG)
    )
    fast_json = decode_traces_fast(body, JSON)
    if not _unusual_json(body):
        assert isinstance(fast_json, JsonRequest)
    got = translate_traces(fast_json, ORG, limits) if limits else translate_traces(fast_json, ORG)
    assert got == expected
    assert _zero_signs(got) == _zero_signs(expected)  # rows compare -0.0 equal to 0.0
    return reference


def _unusual_json(body: bytes) -> bool:
    """What the fast OTLP/JSON decoder leaves to the reference (non-finite doubles...)."""
    return any(word in body for word in (b'"NaN"', b'"Infinity"', b'"-Infinity"')) or any(
        len(digits) > 18 for digits in re.findall(rb'"intValue": "-?([0-9]+)"', body)
    )


def _zero_signs(result: Translation) -> list[str]:
    return [repr(row.attributes) for row in result.batch.spans]


@pytest.fixture
def sdk() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    """A real SDK tracer whose spans we export with the SDK's own OTLP encoder."""
    exporter = InMemorySpanExporter()
    resource = Resource.create(
        agent_resource(
            "agent-7",
            agent_name="planner",
            subsystem="mosaic",
            fleet_id="fleet-eu",
            service_version="1.2.3",
            org_hint="someone-else",
        )
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("planner.lib", "0.1"), exporter
    provider.shutdown()


def sdk_request(exporter: InMemorySpanExporter) -> ExportTraceServiceRequest:
    req: ExportTraceServiceRequest = encode_spans(exporter.get_finished_spans())
    return req


def test_sdk_spans_become_rows(sdk: tuple[Tracer, InMemorySpanExporter]) -> None:
    tracer, exporter = sdk
    with (
        tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent,
        tracer.start_as_current_span("child", attributes={"a": 1, "b": [True]}) as child,
    ):
        child.set_status(StatusCode.ERROR, "bad")
    result = translate(sdk_request(exporter))
    assert (result.rejected, result.errors) == (0, ())
    assert result.batch.org_id == ORG  # aeos.org.hint is informational only
    rows = {row.name: row for row in result.batch.spans}
    p, c = rows["parent"], rows["child"]
    assert p.trace_id == parent.get_span_context().trace_id.to_bytes(16, "big")
    assert p.span_id == parent.get_span_context().span_id.to_bytes(8, "big")
    assert (p.parent_span_id, c.parent_span_id) == (None, p.span_id)
    assert c.span_id == child.get_span_context().span_id.to_bytes(8, "big")
    assert (p.kind, c.kind) == (Span.SPAN_KIND_SERVER, Span.SPAN_KIND_INTERNAL)
    assert (c.status_code, c.status_message, p.status_code) == (2, "bad", 0)
    [sdk_child] = [s for s in exporter.get_finished_spans() if s.name == "child"]
    assert (c.start_ns, c.end_ns) == (sdk_child.start_time, sdk_child.end_time)
    assert c.attributes == {"a": 1, "b": [True]}
    assert c.resource_attributes["aeos.org.hint"] == "someone-else"
    assert (c.agent_id, c.fleet_id, c.service_name) == ("agent-7", "fleet-eu", "planner")
    assert (c.subsystem, c.scope_name, c.task_run_id, c.links) == (
        "MOSAIC",
        "planner.lib",
        None,
        None,
    )
    [agent] = result.batch.agents
    assert (agent.agent_id, agent.name, agent.fleet_id) == ("agent-7", "planner", "fleet-eu")
    assert (agent.subsystem, agent.version, agent.service_name) == ("MOSAIC", "1.2.3", "planner")
    assert agent.seen_ns == max(p.end_ns, c.end_ns)
    assert (agent.heartbeat_ns, agent.status) == (None, None)


def test_semconv_task_run_and_llm_call(sdk: tuple[Tracer, InMemorySpanExporter]) -> None:
    tracer, exporter = sdk
    with (
        task_run_span(tracer, "run-1", task_id="task-9"),
        llm_call_span(tracer, provider="openai", model="gpt-4o") as llm,
    ):
        record_llm_usage(
            llm, input_tokens=1200, output_tokens=80, cache_read_tokens=1024,
            response_model="gpt-4o-2024-08-06",
        )  # fmt: skip
    result = translate(sdk_request(exporter))
    [run] = result.batch.task_runs
    run_span = next(s for s in result.batch.spans if s.task_run_id == "run-1")
    assert (run.task_run_id, run.task_id, run.is_root, run.status) == (
        "run-1", "task-9", True, "succeeded",
    )  # fmt: skip
    assert (run.start_ns, run.end_ns, run.span_id) == (
        run_span.start_ns, run_span.end_ns, run_span.span_id,
    )  # fmt: skip
    assert run.agent_id == "agent-7"
    assert run.trace_id == run_span.trace_id
    [call] = result.batch.llm_calls
    llm_row = next(s for s in result.batch.spans if s.name == "chat gpt-4o")
    assert (call.provider, call.model) == ("openai", "gpt-4o-2024-08-06")
    assert (call.input_tokens, call.output_tokens, call.cache_read_tokens) == (1200, 80, 1024)
    assert (call.cache_creation_tokens, call.explicit_cost_usd) == (0, None)
    assert (call.span_id, call.time_ns, call.subsystem) == (
        llm_row.span_id,
        llm_row.start_ns,
        "MOSAIC",
    )
    assert (llm_row.gen_ai_provider, llm_row.gen_ai_model, llm_row.gen_ai_operation) == (
        "openai", "gpt-4o-2024-08-06", "chat",
    )  # fmt: skip
    assert (llm_row.input_tokens, llm_row.output_tokens) == (1200, 80)
    assert llm_row.attributes["gen_ai.request.model"] == "gpt-4o"  # mapped ones stay too


def test_semconv_task_run_that_raises_fails(sdk: tuple[Tracer, InMemorySpanExporter]) -> None:
    tracer, exporter = sdk
    with pytest.raises(RuntimeError), task_run_span(tracer, "run-2", task_id="t"):
        raise RuntimeError("boom")
    result = translate(sdk_request(exporter))
    [run] = result.batch.task_runs
    assert (run.status, run.is_root) == ("failed", True)
    [event] = result.batch.events
    assert (event.event_type, event.severity, event.message) == ("exception", "error", "boom")
    assert event.task_run_id == "run-2"


RUN = {"mosaic.task_run.id": "r"}
ERROR = Status(code=Status.STATUS_CODE_ERROR)


@pytest.mark.parametrize(
    ("fields", "attrs", "is_root", "status"),
    [
        ({}, {}, True, "succeeded"),  # no parent: the run's own span
        ({"status": Status(code=Status.STATUS_CODE_OK)}, {}, True, "succeeded"),
        ({"status": Status(code=Status.STATUS_CODE_ERROR)}, {}, True, "failed"),
        ({"parent_span_id": SPAN}, {}, False, None),
        ({"parent_span_id": SPAN, "status": ERROR}, {}, False, None),
        ({"parent_span_id": SPAN}, {"mosaic.task.id": "t"}, True, "succeeded"),
        ({"parent_span_id": SPAN, "name": "mosaic.task_run"}, {}, True, "succeeded"),
        ({"parent_span_id": SPAN}, {"mosaic.task_run.status": "running"}, False, "running"),
        ({"status": ERROR}, {"mosaic.task_run.status": "succeeded"}, True, "succeeded"),
        ({}, {"mosaic.task_run.status": "Cancelled"}, True, "canceled"),
        ({"status": ERROR}, {"mosaic.task_run.status": "weird"}, True, "failed"),
    ],
)
def test_task_run_rules(
    fields: dict[str, Any], attrs: dict[str, Any], is_root: bool, status: str | None
) -> None:
    result = translate(request(span(attributes=RUN | attrs, **fields)))
    [run] = result.batch.task_runs
    assert (run.is_root, run.status) == (is_root, status)
    assert result.batch.spans[0].task_run_id == "r"


def test_no_task_run_without_the_attribute() -> None:
    assert translate(request(span(attributes={"mosaic.task.id": "t"}))).batch.task_runs == []


def test_deprecated_gen_ai_names() -> None:
    attrs = {
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-3-5-sonnet",
        "gen_ai.usage.prompt_tokens": 10,
        "gen_ai.usage.completion_tokens": "7",
    }
    result = translate(request(span(attributes=attrs)))
    [call] = result.batch.llm_calls
    assert (call.provider, call.model, call.input_tokens, call.output_tokens) == (
        "anthropic", "claude-3-5-sonnet", 10, 7,
    )  # fmt: skip
    row = result.batch.spans[0]
    assert (row.gen_ai_provider, row.gen_ai_model, row.input_tokens) == (
        "anthropic", "claude-3-5-sonnet", 10,
    )  # fmt: skip


def test_explicit_cost_alone_is_an_llm_call() -> None:
    result = translate(request(span(attributes={"aeos.cost.usd": 0.25})))
    [call] = result.batch.llm_calls
    assert (call.explicit_cost_usd, call.input_tokens, call.provider, call.model) == (
        0.25, 0, "", "",
    )  # fmt: skip


def test_gen_ai_without_usage_is_no_llm_call() -> None:
    attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
    result = translate(request(span(attributes=attrs)))
    assert result.batch.llm_calls == []
    assert result.batch.spans[0].gen_ai_operation == "execute_tool"
    assert result.batch.spans[0].input_tokens is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"trace_id": TRACE[:15]}, "trace_id must be 16 bytes"),
        ({"trace_id": bytes(16)}, "trace_id must be 16 bytes, not all zero"),
        ({"trace_id": b""}, "trace_id"),
        ({"span_id": b"\x01" * 9}, "span_id must be 8 bytes"),
        ({"span_id": bytes(8)}, "span_id must be 8 bytes, not all zero"),
        ({"parent_span_id": b"\x01" * 5}, "parent_span_id"),
        ({"start_time_unix_nano": 0}, "start_time_unix_nano is 0"),
        ({"end_time_unix_nano": T0 - 1}, "before start"),
        ({"end_time_unix_nano": 0}, "before start"),
        ({"end_time_unix_nano": 2**64 - 1}, "out of range"),
        ({"name": "n" * 1025}, "name is longer than 1024 bytes"),
        ({"name": "é" * 513}, "name is longer than 1024 bytes"),  # 1026 bytes in UTF-8
        ({"attributes": {f"k{i}": i for i in range(257)}}, "more than 256 attributes"),
        ({"attributes": {"big": "x" * 65537}}, "'big' is larger than 65536 bytes"),
        ({"attributes": {"big": "€" * 21846}}, "'big' is larger"),  # 65538 bytes
        ({"attributes": {"big": b"\x00" * 65537}}, "'big' is larger"),
        ({"attributes": {"big": ["x" * 40000, "y" * 40000]}}, "'big' is larger"),
        ({"attributes": {"big": {"a": "x" * 70000}}}, "'big' is larger"),
    ],
)
def test_bad_spans_are_rejected_one_by_one(fields: dict[str, Any], reason: str) -> None:
    result = translate(request(span(1), span(2, **fields), span(3)))
    assert result.rejected == 1
    assert [row.name for row in result.batch.spans] == ["span-1", "span-3"]
    [message] = result.errors
    assert message.startswith("span rejected: ")
    assert reason in message


def test_limits_are_inclusive_and_configurable() -> None:
    at_limit = span(
        name="é" * 512,
        attributes={f"k{i}": "€" * 21845 if i == 0 else i for i in range(256)},
    )
    assert translate(request(at_limit)).rejected == 0
    small = Limits(max_attributes=2, max_attribute_value_bytes=4, max_name_bytes=6)
    res = {"service.name": "s"}
    ok = span(name="span-1", attributes={"a": "abcd", "b": 1})
    assert translate(request(ok, resource=res), small).rejected == 0
    for bad in (
        span(attributes={"a": "abcde"}),
        span(attributes={"a": 1, "b": 2, "c": 3}),
        span(name="span-10"),
    ):
        assert translate(request(bad, resource=res), small).rejected == 1


def test_errors_are_distinct_and_capped() -> None:
    bad = [span(i, name="n" * (1025 + i)) for i in range(2, 22)]  # one message: all the same
    bad += [span(100 + i, attributes={f"k{i}": "x" * 70000}) for i in range(20)]  # 20 keys
    result = translate(request(span(1), *bad))
    assert result.rejected == 40
    assert len(result.batch.spans) == 1
    assert len(result.errors) == 10
    assert len(set(result.errors)) == 10
    assert result.errors[0] == "span rejected: name is longer than 1024 bytes"


def test_attribute_values() -> None:
    attrs = {
        "s": "text",
        "empty": "",
        "i": -(2**63),
        "b": False,
        "d": 1.5,
        "nan": float("nan"),
        "inf": float("-inf"),
        "bytes": b"\x01\xff",
        "list": [1, "a", [2.5], {"k": b"\x00"}],
        "map": {"x": {"y": None}},
        "none": None,
    }
    [row] = translate(request(span(attributes=attrs))).batch.spans
    assert row.attributes == {
        "s": "text",
        "empty": "",
        "i": -(2**63),
        "b": False,
        "d": 1.5,
        "nan": "NaN",
        "inf": "-Infinity",
        "bytes": "01ff",
        "list": [1, "a", [2.5], {"k": "00"}],
        "map": {"x": {"y": None}},
        "none": None,
    }


def test_nul_characters_never_reach_storage() -> None:
    attrs = {"k\x00": "v\x00", "list": ["a\x00"]}
    s = span(name="n\x00", status=Status(message="m\x00"), attributes=attrs)
    [row] = translate(request(s, resource=AGENT | {"r": "\x00"})).batch.spans
    assert (row.name, row.status_message) == ("n\ufffd", "m\ufffd")
    assert row.attributes == {"k\ufffd": "v\ufffd", "list": ["a\ufffd"]}
    assert row.resource_attributes["r"] == "\ufffd"


def test_odd_but_valid_fields() -> None:
    s = span(
        parent_span_id=bytes(8),
        kind=42,
        status=Status(code=7),  # type: ignore[arg-type]
        trace_state="k=v",
        dropped_attributes_count=2**32 - 1,
    )
    [row] = translate(request(s)).batch.spans
    assert (row.parent_span_id, row.kind, row.status_code) == (None, 0, 0)
    assert (row.trace_state, row.dropped_attributes_count) == ("k=v", 2**31 - 1)


def test_links() -> None:
    links = [
        Span.Link(trace_id=TRACE, span_id=SPAN),
        Span.Link(trace_id=bytes(16), span_id=SPAN),
        Span.Link(trace_id=TRACE, span_id=b"\x01"),
    ]
    result = translate(request(span(links=links), span(2, links=links[1:])))
    first, second = result.batch.spans
    assert first.links == [TRACE + SPAN]
    assert second.links is None
    assert result.rejected == 0
    assert result.errors == ("span link with an invalid trace_id or span_id skipped",)


def test_span_events() -> None:
    events = [
        Span.Event(
            name="exception", time_unix_nano=T0 + 5, attributes=kvs({"exception.message": "E"})
        ),
        Span.Event(name="cache.miss", time_unix_nano=0, attributes=kvs({"k": 1})),
    ]
    s = span(events=events, attributes=RUN)
    result = translate(request(s))
    exc, miss = result.batch.events
    assert (exc.severity, exc.severity_number, exc.message, exc.time_ns) == (
        "error",
        17,
        "E",
        T0 + 5,
    )
    assert (miss.severity, miss.severity_number, miss.message) == ("info", 9, "cache.miss")
    assert miss.time_ns == s.start_time_unix_nano  # no time: the span's start
    assert (miss.event_type, miss.payload, miss.observed_ns) == ("cache.miss", {"k": 1}, None)
    assert (miss.trace_id, miss.span_id, miss.task_run_id) == (TRACE, s.span_id, "r")
    assert (miss.agent_id, miss.service_name, miss.subsystem) == ("agent-1", "svc", "MOSAIC")
    assert len(exc.event_id) == 16
    assert exc.event_id != miss.event_id


def otlp_json(message: Any) -> bytes:
    """OTLP/JSON as exporters send it (ids in hex)."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex()
                if k in ("traceId", "spanId", "parentSpanId")
                else fix(v)
                for k, v in node.items()
            }
        return [fix(v) for v in node] if isinstance(node, list) else node

    return json.dumps(fix(json_format.MessageToDict(message))).encode()


def test_event_ids_survive_retries_and_encodings() -> None:
    events = [Span.Event(name="e", time_unix_nano=T0, attributes=kvs({"k": i})) for i in range(3)]
    req = request(span(events=events), span(2, events=events[:1]))
    ids = [e.event_id for e in translate(req).batch.events]
    assert len(set(ids)) == 4  # the same event on another span has another id
    retried = translate(decode_traces(req.SerializeToString(), PROTOBUF))
    via_json = translate(decode_traces(otlp_json(req), JSON))
    assert ids == [e.event_id for e in retried.batch.events]
    assert ids == [e.event_id for e in via_json.batch.events]


def test_span_event_over_the_limits_is_skipped_with_a_warning() -> None:
    big = Span.Event(name="e", time_unix_nano=T0, attributes=kvs({"k": "x" * 70000}))
    result = translate(request(span(events=[big, Span.Event(name="ok", time_unix_nano=T0)])))
    assert result.rejected == 0
    assert [e.event_type for e in result.batch.events] == ["ok"]
    assert result.errors == ("span event skipped: attribute 'k' is larger than 65536 bytes",)


def test_heartbeat_span_events_set_the_agent_status() -> None:
    beat = "damn.agent.heartbeat"
    events = [
        Span.Event(
            name=beat, time_unix_nano=T0 + 10, attributes=kvs({"damn.agent.status": "degraded"})
        ),
        Span.Event(
            name=beat, time_unix_nano=T0 + 5, attributes=kvs({"damn.agent.status": "offline"})
        ),
    ]
    [agent] = translate(request(span(events=events))).batch.agents
    assert (agent.heartbeat_ns, agent.status) == (T0 + 10, "degraded")
    unknown = [
        Span.Event(name=beat, time_unix_nano=T0, attributes=kvs({"damn.agent.status": "busy"}))
    ]
    [agent] = translate(request(span(events=unknown))).batch.agents
    assert agent.status == "online"
    not_a_beat = [
        Span.Event(name="x", time_unix_nano=T0, attributes=kvs({"damn.agent.status": "offline"}))
    ]
    [agent] = translate(request(span(events=not_a_beat))).batch.agents
    assert (agent.heartbeat_ns, agent.status) == (None, None)


def test_one_agent_sighting_per_distinct_resource() -> None:
    reordered = dict(reversed(list(AGENT.items())))
    req = request(span(1, end_time_unix_nano=T0 + 50))
    req.resource_spans.extend(
        request(span(2, end_time_unix_nano=T0 + 90), resource=reordered).resource_spans
    )
    other = AGENT | {"aeos.agent.id": "agent-2"}
    req.resource_spans.extend(request(span(3), resource=other).resource_spans)
    req.resource_spans.extend(request(span(4), resource={}).resource_spans)  # names no agent
    result = translate(req)
    assert len(result.batch.spans) == 4
    assert {a.agent_id: a.seen_ns for a in result.batch.agents} == {
        "agent-1": T0 + 90,
        "agent-2": T0 + 3 + 1000,
    }
    assert result.batch.spans[3].agent_id is None


def test_no_sighting_when_every_span_is_rejected() -> None:
    result = translate(request(span(start_time_unix_nano=0)))
    assert (result.rejected, result.batch.agents) == (1, [])


@pytest.mark.parametrize(
    ("resource", "agent_id", "name"),
    [
        ({"aeos.agent.id": "a", "service.instance.id": "i", "service.name": "s"}, "a", "a"),
        ({"service.instance.id": "i", "service.name": "s", "aeos.agent.name": "N"}, "i", "N"),
        ({"service.name": "s"}, "s", "s"),
        ({"aeos.agent.id": "", "service.name": "s"}, "s", "s"),
        ({"aeos.agent.id": 42}, "42", "42"),
    ],
)
def test_agent_identity(resource: dict[str, Any], agent_id: str, name: str) -> None:
    result = translate(request(span(), resource=resource))
    [agent] = result.batch.agents
    assert (agent.agent_id, agent.name, result.batch.spans[0].agent_id) == (
        agent_id,
        name,
        agent_id,
    )


@pytest.mark.parametrize(
    ("resource", "attrs", "expected"),
    [
        ({"aeos.subsystem": "DAMN"}, {"uce.context.id": "c"}, "DAMN"),
        ({"aeos.subsystem": "uce"}, {}, "UCE"),
        ({"aeos.subsystem": "DAMN"}, {"aeos.subsystem": "mosaic"}, "MOSAIC"),
        ({}, {"damn.queue.name": "q"}, "DAMN"),
        ({}, {"mosaic.task_run.id": "r"}, "MOSAIC"),
        ({"aeos.subsystem": "nonsense"}, {"uce.op": "read"}, "UCE"),
        ({"aeos.subsystem": "nonsense"}, {"x": 1}, "SYSTEM"),
        ({}, {}, "SYSTEM"),
    ],
)
def test_subsystem(resource: dict[str, Any], attrs: dict[str, Any], expected: str) -> None:
    [row] = translate(request(span(attributes=attrs), resource=resource)).batch.spans
    assert row.subsystem == expected


def test_agent_subsystem_of_an_unknown_value_is_system() -> None:
    result = translate(request(span(), resource={"aeos.agent.id": "a", "aeos.subsystem": "X"}))
    assert result.batch.agents[0].subsystem == "SYSTEM"


def test_a_resource_over_the_limits_rejects_its_spans() -> None:
    req = request(span(1), span(2), resource={f"k{i}": i for i in range(300)})
    req.resource_spans.extend(request(span(3)).resource_spans)
    result = translate(req)
    assert result.rejected == 2
    assert [s.name for s in result.batch.spans] == ["span-3"]
    assert result.errors == ("span rejected: resource more than 256 attributes",)


def test_empty_requests() -> None:
    for req in (ExportTraceServiceRequest(), request()):
        result = translate(req)
        assert (result.rejected, result.errors, result.batch.item_count) == (0, (), 0)
        assert result.batch.agents == []
        assert result.batch.org_id == ORG


def test_translation_is_frozen() -> None:
    result = translate(request(span()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.rejected = 3  # type: ignore[misc]

"""OTLP logs → events and agent sightings (heartbeats)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otlp_receiver._decode import PROTOBUF, decode_logs
from otlp_receiver._translate import Limits, Translation, translate_logs
from semconv.helpers import agent_resource, heartbeat
from tests.unit._otlp import kvs, value

ORG = uuid.UUID(int=7)
TRACE = bytes(range(1, 17))
SPAN = bytes(range(1, 9))
T0 = 1_700_000_000_000_000_000
AGENT = {"aeos.agent.id": "agent-1", "service.name": "svc", "aeos.subsystem": "DAMN"}
HEARTBEAT = "damn.agent.heartbeat"


def record(body: Any = "hello", **fields: Any) -> LogRecord:
    attrs = fields.pop("attributes", {})
    base: dict[str, Any] = {"time_unix_nano": T0, "severity_number": 9}
    base.update(fields)
    if body is not None:
        base["body"] = body if isinstance(body, AnyValue) else value(body)
    return LogRecord(attributes=kvs(attrs), **base)


def request(
    *records: LogRecord, resource: dict[str, Any] | None = None
) -> ExportLogsServiceRequest:
    res = ProtoResource(attributes=kvs(AGENT if resource is None else resource))
    scope = ScopeLogs(scope=InstrumentationScope(name="lib"), log_records=records)
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(resource=res, scope_logs=[scope])])


def translate(req: ExportLogsServiceRequest, limits: Limits | None = None) -> Translation:
    return translate_logs(req, ORG, limits) if limits else translate_logs(req, ORG)


@pytest.fixture
def sdk_logs() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    resource = Resource.create(agent_resource("agent-9", subsystem="DAMN", fleet_id="f1"))
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_sdk_heartbeat_sets_the_agent_status(
    sdk_logs: tuple[LoggerProvider, InMemoryLogRecordExporter],
) -> None:
    provider, exporter = sdk_logs
    heartbeat(provider.get_logger("agent"), status="degraded", capacity=4, interval_s=15)
    result = translate(encode_logs(exporter.get_finished_logs()))
    [event] = result.batch.events
    [agent] = result.batch.agents
    assert (event.event_type, event.severity, event.message) == (HEARTBEAT, "info", None)
    assert event.payload == {
        "damn.agent.status": "degraded",
        "damn.agent.capacity": 4,
        "damn.heartbeat.interval": 15.0,
    }
    assert (agent.agent_id, agent.fleet_id, agent.subsystem) == ("agent-9", "f1", "DAMN")
    assert (agent.heartbeat_ns, agent.status, agent.seen_ns) == (
        event.time_ns, "degraded", event.time_ns,
    )  # fmt: skip


def test_sdk_record_inside_a_span(
    sdk_logs: tuple[LoggerProvider, InMemoryLogRecordExporter],
) -> None:
    provider, exporter = sdk_logs
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span:
        provider.get_logger("agent").emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body="disk /dev/sda is full",
            attributes={"mosaic.task_run.id": "run-3"},
        )
    [event] = translate(encode_logs(exporter.get_finished_logs())).batch.events
    assert (event.severity, event.severity_number) == ("warn", 13)
    assert (event.message, event.event_type, event.task_run_id) == (
        "disk /dev/sda is full", "log", "run-3",
    )  # fmt: skip
    context = span.get_span_context()
    assert event.trace_id == context.trace_id.to_bytes(16, "big")
    assert event.span_id == context.span_id.to_bytes(8, "big")
    assert event.payload == {"mosaic.task_run.id": "run-3"}
    assert (event.agent_id, event.fleet_id, event.subsystem) == ("agent-9", "f1", "DAMN")


def test_a_record_becomes_an_event() -> None:
    rec = record(
        "body text",
        observed_time_unix_nano=T0 + 5,
        trace_id=TRACE,
        span_id=SPAN,
        attributes={"k": "v", "mosaic.task_run.id": "r"},
    )
    result = translate(request(rec))
    [event] = result.batch.events
    assert (result.rejected, result.errors) == (0, ())
    assert (event.time_ns, event.observed_ns) == (T0, T0 + 5)
    assert (event.trace_id, event.span_id, event.task_run_id) == (TRACE, SPAN, "r")
    assert (event.message, event.payload) == ("body text", {"k": "v", "mosaic.task_run.id": "r"})
    assert (event.agent_id, event.service_name, event.subsystem) == ("agent-1", "svc", "DAMN")
    assert event.resource_attributes == AGENT
    assert len(event.event_id) == 16


@pytest.mark.parametrize(
    ("number", "text", "severity", "stored"),
    [
        (1, "", "debug", 1),
        (4, "", "debug", 4),
        (5, "", "debug", 5),
        (8, "", "debug", 8),
        (9, "", "info", 9),
        (12, "", "info", 12),
        (13, "ERROR", "warn", 13),  # the number wins
        (16, "", "warn", 16),
        (17, "", "error", 17),
        (20, "", "error", 20),
        (21, "", "fatal", 21),
        (24, "", "fatal", 24),
        (0, "", "info", 0),
        (0, "WARNING", "warn", 13),
        (0, " Error ", "error", 17),
        (0, "critical", "fatal", 21),
        (0, "trace", "debug", 1),
        (0, "loud", "info", 0),
        (25, "debug", "debug", 5),  # out of range: as if unspecified
        (-3, "", "info", 0),
    ],
)
def test_severity(number: int, text: str, severity: str, stored: int) -> None:
    [event] = translate(request(record(severity_number=number, severity_text=text))).batch.events
    assert (event.severity, event.severity_number) == (severity, stored)


@pytest.mark.parametrize(
    ("fields", "event_type"),
    [
        ({"event_name": "my.event", "attributes": {"event.name": "old"}}, "my.event"),
        ({"attributes": {"event.name": "old.style"}}, "old.style"),
        ({}, "log"),
    ],
)
def test_event_type(fields: dict[str, Any], event_type: str) -> None:
    [event] = translate(request(record(**fields))).batch.events
    assert event.event_type == event_type


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("plain", "plain"),
        ("", ""),
        (None, None),  # no body
        (AnyValue(), None),  # an empty body, as the Python SDK sends
        (42, "42"),
        (1.5, "1.5"),
        (True, "true"),
        ({"a": [1, "x"], "é": None}, '{"a":[1,"x"],"é":null}'),
        (b"\x01\x02", "0102"),  # bytes as hex, like attribute values
        ("nul\x00", "nul\ufffd"),
    ],
)
def test_message_from_body(body: Any, message: str | None) -> None:
    [event] = translate(request(record(body))).batch.events
    assert event.message == message
    if isinstance(body, dict):
        assert message is not None
        assert json.loads(message) == body


def test_time_falls_back_to_observed_time() -> None:
    [event] = translate(
        request(record(time_unix_nano=0, observed_time_unix_nano=T0 + 9))
    ).batch.events
    assert (event.time_ns, event.observed_ns) == (T0 + 9, T0 + 9)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"time_unix_nano": 0}, "both 0"),
        ({"time_unix_nano": 2**63}, "out of range"),
        ({"observed_time_unix_nano": 2**64 - 1}, "out of range"),
        ({"attributes": {f"k{i}": i for i in range(257)}}, "more than 256 attributes"),
        ({"attributes": {"k": "x" * 65537}}, "'k' is larger than 65536 bytes"),
        ({"event_name": "e" * 1025}, "event name is longer than 1024 bytes"),
        ({"attributes": {"event.name": "e" * 1025}}, "event name is longer"),
    ],
)
def test_bad_records_are_rejected_one_by_one(fields: dict[str, Any], reason: str) -> None:
    result = translate(request(record("a"), record("b", **fields), record("c")))
    assert result.rejected == 1
    assert [e.message for e in result.batch.events] == ["a", "c"]
    [error] = result.errors
    assert error.startswith("log record rejected: ")
    assert reason in error


@pytest.mark.parametrize(
    ("trace_id", "span_id", "expected"),
    [
        (TRACE, SPAN, (TRACE, SPAN)),
        (b"", b"", (None, None)),
        (bytes(16), bytes(8), (None, None)),  # all zero: invalid, so no trace
        (TRACE[:8], SPAN + b"\x01", (None, None)),
        (TRACE, b"", (TRACE, None)),
    ],
)
def test_invalid_ids_mean_no_trace(
    trace_id: bytes, span_id: bytes, expected: tuple[bytes | None, bytes | None]
) -> None:
    # OTLP logs.proto: receivers SHOULD treat an invalid trace_id/span_id as absent.
    result = translate(request(record(trace_id=trace_id, span_id=span_id)))
    [event] = result.batch.events
    assert (event.trace_id, event.span_id) == expected
    assert result.rejected == 0


def test_event_ids_are_content_hashes() -> None:
    records = [record("a"), record("b"), record("a", time_unix_nano=T0 + 1), record("a")]
    req = request(*records)
    ids = [e.event_id for e in translate(req).batch.events]
    assert ids[0] == ids[3]  # identical records in one request: one id (stored once)
    assert len({ids[0], ids[1], ids[2]}) == 3
    retried = translate(decode_logs(req.SerializeToString(), PROTOBUF)).batch.events
    assert [e.event_id for e in retried] == ids
    other_resource = translate(request(*records, resource=AGENT | {"x": 1})).batch.events
    assert other_resource[0].event_id != ids[0]
    other_org = translate_logs(req, uuid.UUID(int=8)).batch.events
    assert [e.event_id for e in other_org] == ids  # org-independent


def test_heartbeats() -> None:
    beats = [
        record(
            None,
            event_name=HEARTBEAT,
            time_unix_nano=T0 + 2,
            attributes={"damn.agent.status": "offline"},
        ),
        record(
            None,
            event_name=HEARTBEAT,
            time_unix_nano=T0 + 1,
            attributes={"damn.agent.status": "degraded"},
        ),
        record("later, not a heartbeat", time_unix_nano=T0 + 3),
    ]
    [agent] = translate(request(*beats)).batch.agents
    assert (agent.heartbeat_ns, agent.status, agent.seen_ns) == (T0 + 2, "offline", T0 + 3)


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"event_name": HEARTBEAT}, "online"),
        ({"event_name": HEARTBEAT, "attributes": {"damn.agent.status": "ON-FIRE"}}, "online"),
        ({"event_name": HEARTBEAT, "attributes": {"damn.agent.status": "Degraded"}}, "degraded"),
        ({"attributes": {"event.name": HEARTBEAT}}, "online"),
        ({"attributes": {"damn.agent.status": "offline"}}, None),  # not named a heartbeat
    ],
)
def test_heartbeat_status(fields: dict[str, Any], status: str | None) -> None:
    [agent] = translate(request(record(**fields))).batch.agents
    assert agent.status == status
    assert agent.heartbeat_ns == (T0 if status else None)


def test_body_nested_too_deeply_rejects_the_record() -> None:
    deep = AnyValue(string_value="leaf")
    for _ in range(40):
        deep = AnyValue(array_value=ArrayValue(values=[deep]))
    bad = record(None)
    bad.body.CopyFrom(deep)
    result = translate(request(record("ok"), bad))
    assert result.rejected == 1
    assert "nested deeper than 32 levels" in result.errors[0]
    assert result.batch.agents[0].seen_ns == T0


def test_subsystem_of_records() -> None:
    resource = {"service.name": "s"}
    rows = translate(
        request(
            record(attributes={"uce.context.id": "c"}),
            record(attributes={"aeos.subsystem": "mosaic"}),
            record(),
            resource=resource,
        )
    ).batch.events
    assert [e.subsystem for e in rows] == ["UCE", "MOSAIC", "SYSTEM"]


def test_empty_request() -> None:
    result = translate(ExportLogsServiceRequest())
    assert (result.batch.item_count, result.rejected, result.errors) == (0, 0, ())


def test_resource_over_the_limits_rejects_its_records() -> None:
    result = translate(
        request(record(), record(), resource={"r": "x" * 10}), Limits(max_attribute_value_bytes=5)
    )
    assert (result.rejected, result.batch.events) == (2, [])
    assert result.errors == ("log record rejected: resource attribute 'r' is larger than 5 bytes",)

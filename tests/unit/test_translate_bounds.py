"""Documented bounds of mapped values: an item beyond one is rejected alone (issue 9, 2 and 5).

Each case would otherwise reach the database and be refused there (an index entry over
the btree limit, a ``numeric(20,10)`` overflow, a rollup sum overflow), failing the
whole request.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otlp_receiver._translate import translate_logs, translate_metrics, translate_traces
from otlp_receiver._translate._bounds import MAX_COST_USD, MAX_ID_BYTES, MAX_TOKENS
from tests.unit._otlp import kvs

ORG = uuid.uuid4()
T0 = 1_700_000_000_000_000_000
LONG_ID = "x" * (MAX_ID_BYTES + 1)


def _span(n: int, attrs: dict[str, Any]) -> Span:
    return Span(
        trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"), name="op",
        start_time_unix_nano=T0, end_time_unix_nano=T0 + 1000, attributes=kvs(attrs),
    )  # fmt: skip


def _traces(bad: dict[str, Any], resource: dict[str, Any] | None = None) -> Any:
    spans = [_span(1, {}), _span(2, bad), _span(3, {"gen_ai.usage.input_tokens": 10})]
    rs = ResourceSpans(resource=Resource(attributes=kvs(resource or {})),
                       scope_spans=[ScopeSpans(spans=spans)])  # fmt: skip
    return translate_traces(ExportTraceServiceRequest(resource_spans=[rs]), ORG)


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"mosaic.task_run.id": LONG_ID}, "'mosaic.task_run.id' is longer than 256 bytes"),
        ({"uce.operation.name": LONG_ID}, "'uce.operation.name' is longer"),
        ({"mosaic.handoff.to_agent": "é" * 200}, "'mosaic.handoff.to_agent' is longer"),
        ({"uce.context.size_tokens": 1e300}, "'uce.context.size_tokens' must be within"),
        ({"gen_ai.usage.input_tokens": 2**63 - 1}, f"input_tokens is more than {MAX_TOKENS}"),
        ({"gen_ai.usage.output_tokens": 10**17}, "output_tokens is more than"),
        ({"aeos.cost.usd": 1e12}, f"aeos.cost.usd is more than {MAX_COST_USD}"),
        ({"gen_ai.request.model": LONG_ID, "gen_ai.usage.input_tokens": 1}, "request.model"),
    ],
)
def test_a_span_beyond_a_bound_is_rejected_alone(attrs: dict[str, Any], reason: str) -> None:
    result = _traces(attrs)
    assert result.rejected == 1
    assert [s.span_id[-1] for s in result.batch.spans] == [1, 3]
    assert len(result.batch.llm_calls) == 1
    [error] = result.errors
    assert reason in error


def test_values_at_the_bounds_are_kept() -> None:
    at = {"gen_ai.usage.input_tokens": MAX_TOKENS, "aeos.cost.usd": MAX_COST_USD,
          "mosaic.task_run.id": "r" * MAX_ID_BYTES, "uce.context.size_tokens": MAX_TOKENS}  # fmt: skip
    result = _traces(at)
    assert result.rejected == 0
    assert len(result.batch.llm_calls) == 2


def test_a_resource_with_an_oversize_service_name_rejects_its_items() -> None:
    result = _traces({}, resource={"service.name": "s" * 6000})
    assert result.rejected == 3
    assert "'service.name' is longer than 256 bytes" in result.errors[0]


def test_a_log_record_with_an_oversize_task_run_id_is_rejected_alone() -> None:
    records = [
        LogRecord(time_unix_nano=T0, attributes=kvs({"mosaic.task_run.id": LONG_ID})),
        LogRecord(time_unix_nano=T0 + 1),
    ]
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])]
    )
    result = translate_logs(request, ORG)
    assert result.rejected == 1
    assert len(result.batch.events) == 1


def _metrics(*metrics: Metric) -> Any:
    rm = ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=list(metrics))])
    return translate_metrics(ExportMetricsServiceRequest(resource_metrics=[rm]), ORG)


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        (HistogramDataPoint(time_unix_nano=T0, count=2**63 - 1), "count is out of range"),
        (HistogramDataPoint(time_unix_nano=T0, count=1, bucket_counts=[2**60]), "bucket count"),
        (HistogramDataPoint(time_unix_nano=T0, count=1, sum=1.7e308), "sum is out of range"),
        (HistogramDataPoint(time_unix_nano=T0, count=1, min=-1e300), "min is out of range"),
    ],
)
def test_a_histogram_point_beyond_a_bound_is_rejected(point: Any, reason: str) -> None:
    good = HistogramDataPoint(time_unix_nano=T0 + 1, count=2**53, sum=1e290)
    result = _metrics(Metric(name="h", histogram=Histogram(data_points=[point, good])))
    assert result.rejected == 1
    assert len(result.batch.metric_points) == 1
    assert reason in result.errors[0]


def test_gauge_values_beyond_the_magnitude_bound_are_rejected_but_not_infinities() -> None:
    values = [1.7976931348623157e308, float("inf"), float("nan"), -1e291, 5.0]
    points = [NumberDataPoint(time_unix_nano=T0 + i, as_double=v) for i, v in enumerate(values)]
    result = _metrics(Metric(name="g", gauge=Gauge(data_points=points)))
    assert result.rejected == 2
    assert len(result.batch.metric_points) == 3


def test_a_metric_with_an_oversize_unit_rejects_its_points() -> None:
    point = NumberDataPoint(time_unix_nano=T0, as_int=1)
    result = _metrics(Metric(name="g", unit=LONG_ID, gauge=Gauge(data_points=[point])))
    assert result.rejected == 1
    assert "metric unit is longer" in result.errors[0]

"""OTLP metrics → metric points and agent sightings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    InstrumentationScope,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from otlp_receiver._translate import Limits, Translation, translate_metrics
from semconv.helpers import agent_resource
from tests.unit._otlp import kvs

ORG = uuid.UUID(int=3)
T0 = 1_700_000_000_000_000_000
AGENT = {"aeos.agent.id": "agent-1", "service.name": "svc"}
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


def gauge(name: str = "g", *points: NumberDataPoint, unit: str = "1") -> Metric:
    return Metric(name=name, unit=unit, gauge=Gauge(data_points=points or [number()]))


def number(time: int = T0, attrs: dict[str, Any] | None = None, **value: Any) -> NumberDataPoint:
    value = value or {"as_double": 1.5}
    return NumberDataPoint(time_unix_nano=time, attributes=kvs(attrs or {}), **value)


def request(
    *metrics: Metric, resource: dict[str, Any] | None = None, scope: str = "lib"
) -> ExportMetricsServiceRequest:
    res = ProtoResource(attributes=kvs(AGENT if resource is None else resource))
    scope_metrics = ScopeMetrics(scope=InstrumentationScope(name=scope), metrics=metrics)
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(resource=res, scope_metrics=[scope_metrics])]
    )


def translate(req: ExportMetricsServiceRequest, limits: Limits | None = None) -> Translation:
    return translate_metrics(req, ORG, limits) if limits else translate_metrics(req, ORG)


@pytest.fixture
def sdk_meter() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    resource = Resource.create(agent_resource("agent-5", subsystem="DAMN"))
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def test_sdk_instruments(sdk_meter: tuple[MeterProvider, InMemoryMetricReader]) -> None:
    provider, reader = sdk_meter
    meter = provider.get_meter("fleet")
    meter.create_counter("damn.agent.heartbeats").add(3, {"damn.agent.status": "online"})
    meter.create_histogram("latency", unit="s").record(0.2)
    meter.create_up_down_counter("damn.queue.depth").add(-2)
    data = reader.get_metrics_data()
    assert data is not None
    result = translate(encode_metrics(data))
    assert result.rejected == 0
    rows = {row.metric: row for row in result.batch.metric_points}
    beats, latency, depth = rows["damn.agent.heartbeats"], rows["latency"], rows["damn.queue.depth"]
    assert (beats.kind, beats.value, beats.is_monotonic, beats.temporality) == ("sum", 3.0, True, 2)
    assert beats.attributes == {"damn.agent.status": "online"}
    assert (depth.kind, depth.value, depth.is_monotonic) == ("sum", -2.0, False)
    assert (latency.kind, latency.count, latency.sum, latency.unit) == ("histogram", 1, 0.2, "s")
    assert (latency.min, latency.max) == (0.2, 0.2)
    assert latency.bucket_counts is not None
    assert latency.explicit_bounds is not None
    assert len(latency.bucket_counts) == len(latency.explicit_bounds) + 1
    assert sum(latency.bucket_counts) == 1
    assert all(r.subsystem == "DAMN" and r.agent_id == "agent-5" for r in rows.values())
    assert all(r.start_ns is not None and r.start_ns <= r.time_ns for r in rows.values())
    [agent] = result.batch.agents
    assert agent.seen_ns == max(r.time_ns for r in rows.values())


def test_gauge_points() -> None:
    metric = gauge("cpu", number(as_int=7), number(T0 + 1, as_double=0.25), unit="%")
    result = translate(request(metric))
    first, second = result.batch.metric_points
    assert (first.kind, first.value, second.value) == ("gauge", 7.0, 0.25)
    assert isinstance(first.value, float)
    assert (first.time_ns, first.start_ns, first.unit, first.temporality) == (T0, None, "%", 0)
    assert (first.is_monotonic, first.count, first.bucket_counts) == (False, None, None)
    assert (first.service_name, first.agent_id, first.resource_attributes) == (
        "svc", "agent-1", AGENT,
    )  # fmt: skip
    assert first.series_id == second.series_id
    assert len(first.series_id) == 16


def test_sum_points() -> None:
    points = [NumberDataPoint(time_unix_nano=T0, start_time_unix_nano=T0 - 10, as_int=5)]
    metric = Metric(
        name="requests",
        sum=Sum(data_points=points, aggregation_temporality=DELTA, is_monotonic=True),
    )
    [row] = translate(request(metric)).batch.metric_points
    assert (row.kind, row.value, row.temporality, row.is_monotonic) == ("sum", 5.0, 1, True)
    assert row.start_ns == T0 - 10


def test_histogram_points() -> None:
    point = HistogramDataPoint(
        time_unix_nano=T0,
        count=6,
        sum=12.5,
        min=0.5,
        max=9.0,
        explicit_bounds=[1.0, 5.0],
        bucket_counts=[1, 2, 3],
    )
    no_sum = HistogramDataPoint(time_unix_nano=T0 + 1, count=0)
    metric = Metric(
        name="h",
        histogram=Histogram(data_points=[point, no_sum], aggregation_temporality=CUMULATIVE),
    )
    row, empty = translate(request(metric)).batch.metric_points
    assert (row.kind, row.count, row.sum, row.min, row.max) == ("histogram", 6, 12.5, 0.5, 9.0)
    assert (row.explicit_bounds, row.bucket_counts, row.temporality) == ([1.0, 5.0], [1, 2, 3], 2)
    assert (empty.count, empty.sum, empty.min, empty.max) == (0, None, None, None)
    assert (empty.explicit_bounds, empty.bucket_counts) == ([], [])


def test_exponential_histogram_points() -> None:
    point = ExponentialHistogramDataPoint(
        time_unix_nano=T0,
        count=10,
        sum=3.5,
        min=-1.0,
        max=2.0,
        scale=-3,
        zero_count=2,
        positive=ExponentialHistogramDataPoint.Buckets(offset=-4, bucket_counts=[1, 5]),
        negative=ExponentialHistogramDataPoint.Buckets(offset=2, bucket_counts=[2]),
    )
    metric = Metric(
        name="eh",
        exponential_histogram=ExponentialHistogram(
            data_points=[point], aggregation_temporality=DELTA
        ),
    )
    [row] = translate(request(metric)).batch.metric_points
    assert (row.kind, row.count, row.sum, row.min, row.max, row.temporality) == (
        "exponential_histogram", 10, 3.5, -1.0, 2.0, 1,
    )  # fmt: skip
    assert (row.exp_scale, row.exp_zero_count) == (-3, 2)
    assert (row.exp_positive_offset, row.exp_positive_counts) == (-4, [1, 5])
    assert (row.exp_negative_offset, row.exp_negative_counts) == (2, [2])


def test_summary_points_keep_quantiles_in_attributes() -> None:
    quantiles = [
        SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0),
        SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=float("inf")),
    ]
    point = SummaryDataPoint(
        time_unix_nano=T0, count=4, sum=8.0, quantile_values=quantiles, attributes=kvs({"a": "b"})
    )
    bare = SummaryDataPoint(time_unix_nano=T0 + 1, count=1, sum=1.0, attributes=kvs({"a": "b"}))
    metric = Metric(name="s", summary=Summary(data_points=[point, bare]))
    row, other = translate(request(metric)).batch.metric_points
    assert (row.kind, row.count, row.sum, row.value) == ("summary", 4, 8.0, None)
    assert row.attributes == {
        "a": "b",
        "_quantiles": [
            {"quantile": 0.5, "value": 1.0},
            {"quantile": 0.99, "value": "Infinity"},
        ],
    }
    assert other.attributes == {"a": "b", "_quantiles": []}
    assert row.series_id == other.series_id  # the quantiles do not split the series


def series(req: ExportMetricsServiceRequest) -> bytes:
    return translate(req).batch.metric_points[0].series_id


def test_series_id_is_stable_and_order_independent() -> None:
    attrs = {"a": "1", "b": 2}
    base = series(request(gauge("m", number(attrs=attrs)), resource={"r1": "x", "r2": "y"}))
    reordered = request(
        gauge("m", number(T0 + 60, attrs=dict(reversed(attrs.items())))),
        resource={"r2": "y", "r1": "x"},
    )
    assert series(reordered) == base
    different = [
        request(gauge("n", number(attrs=attrs)), resource={"r1": "x", "r2": "y"}),
        request(gauge("m", number(attrs={"a": "1"})), resource={"r1": "x", "r2": "y"}),
        request(gauge("m", number(attrs={"a": "1", "b": "2"})), resource={"r1": "x", "r2": "y"}),
        request(gauge("m", number(attrs=attrs)), resource={"r1": "x"}),
        request(gauge("m", number(attrs=attrs)), resource={"r1": "x", "r2": "y"}, scope="other"),
    ]
    ids = {series(req) for req in different}
    assert base not in ids
    assert len(ids) == len(different)


@pytest.mark.parametrize(
    ("metric", "reason"),
    [
        (gauge("g", number(time=0)), "time_unix_nano is 0"),
        (gauge("g", number(time=2**63)), "time is out of range"),
        (gauge("g", NumberDataPoint(time_unix_nano=T0)), "number data point has no value"),
        (gauge("g", number(attrs={"k": "x" * 65537})), "'k' is larger than 65536 bytes"),
        (
            Metric(
                name="h",
                histogram=Histogram(
                    data_points=[
                        HistogramDataPoint(time_unix_nano=T0, count=1, bucket_counts=[1, 0])
                    ]
                ),
            ),
            "one more entry than explicit_bounds",
        ),
        (
            Metric(
                name="h",
                histogram=Histogram(
                    data_points=[HistogramDataPoint(time_unix_nano=T0, count=2**63)]
                ),
            ),
            "count is out of range",
        ),
        (
            Metric(
                name="h",
                histogram=Histogram(
                    data_points=[
                        HistogramDataPoint(time_unix_nano=T0, count=1, bucket_counts=[2**64 - 1])
                    ]
                ),
            ),
            "bucket count is out of range",
        ),
    ],
)
def test_bad_points_are_rejected_one_by_one(metric: Metric, reason: str) -> None:
    result = translate(request(gauge("ok1"), metric, gauge("ok2")))
    assert result.rejected == 1
    assert [row.metric for row in result.batch.metric_points] == ["ok1", "ok2"]
    [error] = result.errors
    assert error.startswith("data point rejected: ")
    assert reason in error


def test_a_bad_metric_name_rejects_all_its_points() -> None:
    long_name = gauge("m" * 1025, number(), number(T0 + 1))
    nameless = gauge("", number())
    result = translate(request(long_name, nameless, gauge("ok")))
    assert result.rejected == 3
    assert [row.metric for row in result.batch.metric_points] == ["ok"]
    assert result.errors == (
        "data point rejected: metric name is longer than 1024 bytes",
        "data point rejected: metric name is empty",
    )


def test_a_metric_without_data_is_nothing() -> None:
    result = translate(request(Metric(name="empty"), gauge("ok")))
    assert (result.rejected, len(result.batch.metric_points)) == (0, 1)


def test_a_resource_over_the_limits_rejects_its_points() -> None:
    small = Limits(max_attributes=1)
    result = translate(request(gauge("g", number(), number(T0 + 1)), resource=AGENT), small)
    assert (result.rejected, result.batch.metric_points) == (2, [])


@pytest.mark.parametrize(
    ("resource", "name", "attrs", "expected"),
    [
        ({"aeos.subsystem": "UCE"}, "damn.queue.depth", {}, "UCE"),
        ({}, "damn.queue.depth", {}, "DAMN"),
        ({}, "uce.cache.hits", {"mosaic.task.id": "t"}, "UCE"),
        ({}, "requests", {"mosaic.task.id": "t"}, "MOSAIC"),
        ({"aeos.subsystem": "UCE"}, "x", {"aeos.subsystem": "damn"}, "DAMN"),
        ({}, "requests", {}, "SYSTEM"),
    ],
)
def test_subsystem(
    resource: dict[str, Any], name: str, attrs: dict[str, Any], expected: str
) -> None:
    [row] = translate(
        request(gauge(name, number(attrs=attrs)), resource=resource)
    ).batch.metric_points
    assert row.subsystem == expected


def test_agent_sighting_per_resource() -> None:
    req = request(gauge("a", number(T0 + 5), number(T0 + 9), number(0)))
    req.resource_metrics.extend(
        request(gauge("b"), resource={"service.name": "other"}).resource_metrics
    )
    agents = {a.agent_id: a.seen_ns for a in translate(req).batch.agents}
    assert agents == {"agent-1": T0 + 9, "other": T0}


def test_empty_request() -> None:
    result = translate(ExportMetricsServiceRequest())
    assert (result.batch.item_count, result.rejected, result.errors) == (0, 0, ())

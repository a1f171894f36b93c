"""Hostile input, class "numeric ranges": values a typed column or a rollup sum cannot hold.

Issue 9, finding 1 (two points or spans whose rollup sum overflows killed a writer task
and hung every org's requests) and finding 5 (values accepted, then refused by the
database: the whole request lost) are reproduced here.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)

from tests.e2e._hostile import (
    HostileService,
    alongside,
    assert_partial,
    hostile,
    post,
    spans_body,
)

__all__ = ["hostile"]  # the fixture
MAX_INT64 = 2**63 - 1


def _metrics(*metrics: Metric) -> bytes:
    rm = ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=list(metrics))])
    return bytes(ExportMetricsServiceRequest(resource_metrics=[rm]).SerializeToString())


def _metrics_partial(response: Any) -> tuple[int, str]:
    assert response.status_code == 200, response.content[:300]
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(response.content)
    return answer.partial_success.rejected_data_points, answer.partial_success.error_message


def test_histogram_counts_whose_sum_overflows_are_rejected_not_fatal(
    hostile: HostileService,
) -> None:
    """Finding 1: two count = 2^63-1 points of one series in one minute."""
    org, key = hostile.new_org()
    minute = time.time_ns() // 60_000_000_000 * 60_000_000_000
    points = [HistogramDataPoint(time_unix_nano=minute + i, count=MAX_INT64) for i in (1, 2)]
    good = HistogramDataPoint(time_unix_nano=minute + 3, count=5, sum=10.0)
    body = _metrics(Metric(name="h", histogram=Histogram(data_points=[*points, good])))
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/metrics", key, body))
    rejected, message = _metrics_partial(response)
    assert rejected == 2
    assert "count is out of range" in message
    assert hostile.scalar("SELECT count(*) FROM metric_points WHERE org_id = :o", o=org) == 1


def test_token_counts_whose_sum_overflows_are_rejected_not_fatal(hostile: HostileService) -> None:
    """Finding 1: two spans with input_tokens = 2^63-1 for one unknown model."""
    org, key = hostile.new_org()
    attrs = {"gen_ai.usage.input_tokens": MAX_INT64, "gen_ai.request.model": "unknown-x"}
    body = spans_body(2, attrs)
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_partial(response, 2, "input_tokens is more than 10000000000")
    assert hostile.scalar("SELECT count(*) FROM cost_line_items WHERE org_id = :o", o=org) == 0


def test_an_explicit_cost_over_the_column_range_rejects_only_its_span(
    hostile: HostileService,
) -> None:
    """Finding 5: aeos.cost.usd = 1e12 overflowed numeric(20,10): 400, good items lost."""
    org, key = hostile.new_org()
    bad = spans_body(1, {"aeos.cost.usd": 1e12})
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, bad))
    assert_partial(response, 1, "aeos.cost.usd is more than 1000000")
    fine = spans_body(1, {"aeos.cost.usd": 0.25})
    assert_partial(post(f"{hostile.url}/v1/traces", key, fine), 0, "")
    cost = hostile.scalar("SELECT sum(cost_usd) FROM cost_line_items WHERE org_id = :o", o=org)
    assert cost == Decimal("0.25")


def test_tokens_that_would_overflow_a_priced_cost_are_rejected(hostile: HostileService) -> None:
    """Finding 5: 1e17 input tokens on a priced model."""
    _, key = hostile.new_org()
    attrs = {"gen_ai.usage.input_tokens": 10**17, "gen_ai.request.model": "gpt-4o",
             "gen_ai.provider.name": "openai"}  # fmt: skip
    body = spans_body(1, attrs)
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_partial(response, 1, "input_tokens is more than")


def test_doubles_near_the_float_maximum_are_rejected_infinities_kept(
    hostile: HostileService,
) -> None:
    """Finding 5: finite doubles near the float maximum overflowed a rollup sum."""
    org, key = hostile.new_org()
    now = time.time_ns()
    values = [1.7e308, 1.7e308, float("inf"), float("nan"), 3.0]
    points = [
        NumberDataPoint(time_unix_nano=now + i * 1000, as_double=v) for i, v in enumerate(values)
    ]
    body = _metrics(Metric(name="g", gauge=Gauge(data_points=points)))
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/metrics", key, body))
    rejected, message = _metrics_partial(response)
    assert rejected == 2
    assert "value is out of range" in message
    assert hostile.scalar("SELECT count(*) FROM metric_points WHERE org_id = :o", o=org) == 3


def test_times_beyond_the_int64_range_are_rejected(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    body = spans_body(1, end_time_unix_nano=2**64 - 1)
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_partial(response, 1, "time is out of range")


def test_context_sizes_out_of_range_are_rejected(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    body = spans_body(2, {"uce.operation.name": "fetch", "uce.context.size_tokens": 1e300})
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_partial(response, 2, "'uce.context.size_tokens' must be within")

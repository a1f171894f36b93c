"""OTLP metrics → metric points and agent sightings.

Rules:

- One row per data point, of kind gauge, sum, histogram, exponential_histogram or
  summary. A point is rejected when its time is 0 (or beyond the int64 nanosecond range),
  a number point has no value, a count is over 2^53 or a summed double (value, sum, min,
  max) beyond 10^290 in magnitude (``_bounds``), a histogram's
  ``bucket_counts`` is neither empty nor one longer than its ``explicit_bounds``, or an
  attribute is over the limits; every point of a metric whose name is empty or over the
  limit, or whose unit is over ``MAX_ID_BYTES``, is rejected. A metric with no data is
  nothing to store (not a rejection).
- ``series_id``: BLAKE2b-128 of the metric name, the resource attributes, the scope name
  and the point attributes, each as canonical (key-sorted) JSON, so attribute order does
  not matter.
- Number points: ``as_int`` or ``as_double`` → ``value`` (a float).
- Summary points: ``count`` and ``sum``; the quantiles go into the point's attributes
  under the reserved key ``_quantiles`` as ``[{"quantile": q, "value": v}, ...]``
  (after the series id is computed, so they do not split the series). A point attribute
  of that name would be overwritten.
- ``subsystem``: the point's ``aeos.subsystem``, else the resource's, else the metric
  name's namespace (``damn.queue.depth`` → DAMN), else the namespaces of the point's
  attribute keys, else SYSTEM.
- Point attributes are kept whole in ``attributes``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from otlp_receiver._translate._bounds import check_count, check_magnitude
from otlp_receiver._translate._common import (
    DEFAULT_LIMITS,
    MAX_INT64,
    QUANTILES_KEY,
    Limits,
    Rejected,
    Rejections,
    ResourceInfo,
    Resources,
    Translation,
    attributes,
    canonical_json,
    check_id,
    check_name,
    clamp_enum,
    clean_text,
    digest16,
    json_number,
)
from semconv.attributes.aeos import AEOS_SUBSYSTEM
from semconv.normalize import subsystem_of
from storage import Batch, MetricPointRow

KINDS = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponential_histogram": "exponential_histogram",
    "summary": "summary",
}
MAX_TEMPORALITY = 2  # AGGREGATION_TEMPORALITY_CUMULATIVE
_NAMESPACES = {"mosaic": "MOSAIC", "damn": "DAMN", "uce": "UCE"}


def translate_metrics(
    request: Any, org_id: uuid.UUID, limits: Limits = DEFAULT_LIMITS
) -> Translation:
    """Translates an ``ExportMetricsServiceRequest`` into the rows of one org.

    Args:
        request: The decoded request.
        org_id: The org of the ingest key that sent it.
        limits: Per-item limits.

    Returns:
        The batch, the number of rejected data points and the messages saying why.
    """
    out = _Points(Batch(org_id), Rejections(), limits)
    resources = Resources(limits)
    for resource_metrics in request.resource_metrics:
        try:
            resource = resources.get(resource_metrics.resource)
        except Rejected as exc:
            n = sum(
                len(_data_points(metric))
                for scope_metrics in resource_metrics.scope_metrics
                for metric in scope_metrics.metrics
            )
            if n:
                out.rejections.reject("data point", f"resource {exc.reason}", n)
            continue
        for scope_metrics in resource_metrics.scope_metrics:
            scope_name = clean_text(scope_metrics.scope.name)
            for metric in scope_metrics.metrics:
                out.metric(metric, resource, scope_name)
    out.batch.agents = resources.agent_sightings()
    return Translation(out.batch, out.rejections.count, tuple(out.rejections.messages))


def _data_points(metric: Any) -> Any:
    kind = metric.WhichOneof("data")
    return getattr(metric, kind).data_points if kind is not None else ()


@dataclass(slots=True)
class _Points:
    """The rows of one request, built metric by metric."""

    batch: Batch
    rejections: Rejections
    limits: Limits

    def metric(self, metric: Any, resource: ResourceInfo, scope_name: str) -> None:
        """Adds the points of one metric; rejects each bad point on its own."""
        kind = metric.WhichOneof("data")
        if kind is None:
            return
        data = getattr(metric, kind)
        try:
            name = check_name(metric.name, self.limits, "metric name")
            if not name:
                raise Rejected("metric name is empty")
            check_id(metric.unit, "metric unit")
        except Rejected as exc:
            if data.data_points:
                self.rejections.reject("data point", exc.reason, len(data.data_points))
            return
        common = _common_columns(name, kind, data, metric.unit, resource)
        base = digest16(name.encode(), resource.key, scope_name.encode())
        subsystem = resource.declared_subsystem or _NAMESPACES.get(name.split(".", 1)[0])
        for point in data.data_points:
            try:
                row = self._point(point, kind, common, base, subsystem, resource)
            except Rejected as exc:
                self.rejections.reject("data point", exc.reason)
                continue
            self.batch.metric_points.append(row)
            resource.seen(row.time_ns)

    def _point(
        self,
        point: Any,
        kind: str,
        common: dict[str, Any],
        base: bytes,
        subsystem: str | None,
        resource: ResourceInfo,
    ) -> MetricPointRow:
        time_ns, start_ns = point.time_unix_nano, point.start_time_unix_nano
        if time_ns == 0:
            raise Rejected("time_unix_nano is 0")
        if time_ns > MAX_INT64 or start_ns > MAX_INT64:
            raise Rejected("time is out of range")
        attrs = attributes(point.attributes, self.limits)
        series_id = digest16(base, canonical_json(attrs))
        values = _VALUES[kind](point)
        if kind == "summary":
            attrs[QUANTILES_KEY] = _quantiles(point)
        return MetricPointRow(
            series_id=series_id,
            time_ns=time_ns,
            start_ns=start_ns or None,
            subsystem=subsystem_of(resource.attributes, attrs)
            if subsystem is None or AEOS_SUBSYSTEM in attrs
            else subsystem,
            attributes=attrs,
            **common,
            **values,
        )


def _common_columns(
    name: str, kind: str, data: Any, unit: str, resource: ResourceInfo
) -> dict[str, Any]:
    """The columns every point of one metric shares."""
    temporality = getattr(data, "aggregation_temporality", 0)  # gauge, summary: none
    return {
        "metric": name,
        "kind": KINDS[kind],
        "temporality": clamp_enum(temporality, MAX_TEMPORALITY),
        "is_monotonic": bool(getattr(data, "is_monotonic", False)),  # sums only
        "unit": clean_text(unit),
        "service_name": resource.service_name,
        "agent_id": resource.agent_id,
        "resource_attributes": resource.attributes,
    }


_count = check_count


def _counts(values: Any) -> list[int]:
    counts = list(values)
    if counts:
        check_count(max(counts), "bucket count")
    return counts


def _optional(point: Any, field: str) -> float | None:
    if not point.HasField(field):
        return None
    return check_magnitude(float(getattr(point, field)), field)


def _number(point: Any) -> dict[str, Any]:
    which = point.WhichOneof("value")
    if which is None:
        raise Rejected("number data point has no value")
    return {"value": check_magnitude(float(getattr(point, which)), "value")}


def _histogram(point: Any) -> dict[str, Any]:
    bounds = list(point.explicit_bounds)
    counts = _counts(point.bucket_counts)
    if counts and len(counts) != len(bounds) + 1:
        raise Rejected("histogram bucket_counts must have one more entry than explicit_bounds")
    return {
        "count": _count(point.count),
        "sum": _optional(point, "sum"),
        "min": _optional(point, "min"),
        "max": _optional(point, "max"),
        "explicit_bounds": bounds,
        "bucket_counts": counts,
    }


def _exponential_histogram(point: Any) -> dict[str, Any]:
    positive, negative = point.positive, point.negative
    return {
        "count": _count(point.count),
        "sum": _optional(point, "sum"),
        "min": _optional(point, "min"),
        "max": _optional(point, "max"),
        "exp_scale": point.scale,
        "exp_zero_count": _count(point.zero_count, "zero_count"),
        "exp_positive_offset": positive.offset,
        "exp_positive_counts": _counts(positive.bucket_counts),
        "exp_negative_offset": negative.offset,
        "exp_negative_counts": _counts(negative.bucket_counts),
    }


def _summary(point: Any) -> dict[str, Any]:
    return {"count": _count(point.count), "sum": check_magnitude(float(point.sum), "sum")}


def _quantiles(point: Any) -> list[dict[str, Any]]:
    """The quantiles as JSON (non-finite numbers as their OTLP/JSON strings)."""
    return [
        {"quantile": json_number(q.quantile), "value": json_number(q.value)}
        for q in point.quantile_values
    ]


_VALUES = {
    "gauge": _number,
    "sum": _number,
    "histogram": _histogram,
    "exponential_histogram": _exponential_histogram,
    "summary": _summary,
}

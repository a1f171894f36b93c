"""The PostgreSQL engine's 1 min rollup rows, aggregated in Python from a commit's new rows.

The writer aggregates only the rows it actually inserted (so a retried export counts
once); ``storage.ingest.rollups`` merges these rows into every level and derived family.
The aggregation mirrors the SQL expressions of the declarations
(``storage.schema._rollups``): the rollup tests compare both engines and recompute every
rollup from raw rows. Sums saturate at ``2^63 - 1`` as the SQL ones do.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from semconv.attributes.damn import DAMN_AGENT_STATUS
from semconv.attributes.mosaic import (
    MOSAIC_HANDOFF_FROM_AGENT,
    MOSAIC_HANDOFF_TO_AGENT,
    MOSAIC_ROUTING_OUTCOME,
    MOSAIC_ROUTING_ROUTE,
)
from semconv.attributes.uce import UCE_CACHE_HIT, UCE_CONTEXT_SIZE_TOKENS, UCE_OPERATION_NAME
from semconv.events.damn import DAMN_AGENT_HEARTBEAT
from storage import hist
from storage.ingest._derive import CostItem
from storage.ingest._sql import NsTime
from storage.ingest.rows import EventRow, MetricPointRow, SpanRow
from storage.schema import MAX_BIGINT

_MINUTE_NS = 60 * 10**9
_DAY_NS = 86_400 * 10**9
STATUS_ERROR = 2


def _minute(ns: int) -> int:
    return ns - ns % _MINUTE_NS


def _text_attr(attrs: dict[str, Any], key: str) -> str | None:
    value = attrs.get(key)
    return value if isinstance(value, str) else None


class _Orgs(dict[uuid.UUID, int]):
    """Org id -> a small int for the aggregation keys (a UUID hashes in Python code, and
    every key is hashed at every lookup); spans come in runs of one org, so one lookup a run."""

    def __missing__(self, org_id: uuid.UUID) -> int:
        self[org_id] = n = len(self)
        return n

    def ids(self) -> list[uuid.UUID]:
        return list(self)  # insertion order: index -> org id


def span_rollup_rows(
    spans: Iterable[tuple[uuid.UUID, SpanRow]],
) -> dict[str, list[tuple[Any, ...]]]:
    """1 min rows of the span-based families (temp table column order)."""
    # Every span of every commit goes through this loop: the attribute tests, the
    # histogram bucket (storage.hist.bucket_of) and the row updates are inlined.
    red: dict[tuple[Any, ...], list[Any]] = {}  # count, errors, sum, min, max, buckets
    uce: dict[tuple[Any, ...], list[Any]] = {}
    routes: dict[tuple[Any, ...], list[int]] = {}
    handoffs: dict[tuple[Any, ...], list[int]] = {}
    sizes: dict[float, int] = {}  # context size -> histogram bucket
    orgs = _Orgs()
    last_org, org = None, 0
    log, ceil, ln_gamma, offset = math.log, math.ceil, hist.LN_GAMMA, hist.OFFSET
    for org_id, s in spans:
        if org_id is not last_org:
            last_org, org = org_id, orgs[org_id]
        start, end = s.start_ns, s.end_ns
        minute = start - start % _MINUTE_NS
        error = s.status_code == STATUS_ERROR
        if end > start:
            duration = (end - start) / 1e6  # SpanRow.duration_ms
            k = ceil(log(duration) / ln_gamma) + offset
        else:
            duration, k = 0.0, hist.ZERO_BUCKET
        agent = s.agent_id or ""
        key = (minute, org, s.subsystem, s.service_name or "", s.name, agent)
        row = red.get(key)
        if row is None:
            red[key] = [1, int(error), duration, duration, duration, {k: 1}]
        else:
            row[0] += 1
            row[1] += error
            row[2] += duration
            if duration < row[3]:
                row[3] = duration
            elif duration > row[4]:
                row[4] = duration
            buckets = row[5]
            buckets[k] = buckets.get(k, 0) + 1
        attrs = s.attributes
        if attrs:
            _span_attrs(attrs, (minute, org), agent, error, uce, routes, handoffs, sizes)
    ids = orgs.ids()
    return {
        "span_red": [
            (NsTime(k[0]), ids[k[1]], *k[2:], *r[:5], hist.encode(r[5])) for k, r in red.items()
        ],
        "uce_ops": [
            (NsTime(k[0]), ids[k[1]], *k[2:], *v[:7], hist.encode(v[7]) if v[7] else [])
            for k, v in uce.items()
        ],
        "mosaic_routes": [(NsTime(k[0]), ids[k[1]], *k[2:], *v) for k, v in routes.items()],
        "mosaic_handoffs": [(NsTime(k[0]), ids[k[1]], *k[2:], *v) for k, v in handoffs.items()],
    }


def _span_attrs(
    attrs: dict[str, Any],
    at: tuple[int, int],
    agent: str,
    error: bool,
    uce: dict[tuple[Any, ...], list[Any]],
    routes: dict[tuple[Any, ...], list[int]],
    handoffs: dict[tuple[Any, ...], list[int]],
    size_buckets: dict[float, int],
) -> None:
    """The attribute-based families' share of one span (``at``: minute, org index)."""
    op = attrs.get(UCE_OPERATION_NAME)
    if isinstance(op, str):
        _add_uce(uce, (*at, agent, op), attrs, error, size_buckets)
    route = attrs.get(MOSAIC_ROUTING_ROUTE)
    if isinstance(route, str):
        outcome = _text_attr(attrs, MOSAIC_ROUTING_OUTCOME) or ""
        counts = routes.setdefault((*at, route, outcome), [0, 0, 0])
        counts[0] += 1
        counts[1 + error] += 1
    to_agent = attrs.get(MOSAIC_HANDOFF_TO_AGENT)
    if isinstance(to_agent, str):
        from_agent = _text_attr(attrs, MOSAIC_HANDOFF_FROM_AGENT)
        if from_agent is None:
            from_agent = agent
        counts = handoffs.setdefault((*at, from_agent, to_agent), [0, 0])
        counts[0] += 1
        counts[1] += error


def _add_uce(uce: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...], attrs: dict[str, Any],
             error: bool, size_buckets: dict[float, int]) -> None:  # fmt: skip
    row = uce.get(key)
    if row is None:  # ops, errors, hits, lookups, sizes, size sum, size max, size buckets
        row = uce[key] = [0, 0, 0, 0, 0, None, None, {}]
    row[0] += 1
    row[1] += error
    hit = attrs.get(UCE_CACHE_HIT)
    if isinstance(hit, bool):
        row[3] += 1
        row[2] += hit
    size = attrs.get(UCE_CONTEXT_SIZE_TOKENS)
    if size.__class__ is int or size.__class__ is float:  # not bool, not a subclass
        size = float(size)
        row[4] += 1
        row[5] = size if row[5] is None else row[5] + size
        if row[6] is None or size > row[6]:
            row[6] = size
        k = size_buckets.get(size)
        if k is None:  # sizes (token counts) repeat: one log per distinct size
            k = size_buckets[size] = hist.bucket_of(size)
        row[7][k] = row[7].get(k, 0) + 1


_HEARTBEAT = DAMN_AGENT_HEARTBEAT
_STATUSES = frozenset({"online", "offline", "degraded"})


def heartbeat_rows(events: Iterable[tuple[uuid.UUID, EventRow]]) -> list[tuple[Any, ...]]:
    """1 min rows of ``damn_heartbeats``."""
    counts: dict[tuple[Any, ...], int] = {}
    for org_id, e in events:
        if e.event_type != _HEARTBEAT:
            continue
        status = e.payload.get(DAMN_AGENT_STATUS)
        status = status.lower() if isinstance(status, str) else ""
        key = (_minute(e.time_ns), org_id, e.agent_id or "", status if status in _STATUSES
               else "online")  # fmt: skip
        counts[key] = counts.get(key, 0) + 1
    return [(NsTime(k[0]), *k[1:], n, 1) for k, n in counts.items()]


def metric_rows(points: Iterable[tuple[uuid.UUID, MetricPointRow]]) -> list[tuple[Any, ...]]:
    """1 min rows of ``metric_rollup``."""
    rows: dict[tuple[Any, ...], list[Any]] = {}
    for org_id, m in points:
        key = (_minute(m.time_ns), org_id, m.metric, m.series_id)
        value = m.value if m.value is not None else m.sum
        low = m.value if m.value is not None else m.min
        high = m.value if m.value is not None else m.max
        obs = m.count if m.count is not None else 1
        row = rows.get(key)
        if row is None:
            rows[key] = [
                m.kind, m.unit, m.service_name or "", m.agent_id or "", m.attributes,
                1, obs, value, low, high, value, m.time_ns, m.explicit_bounds, m.bucket_counts,
            ]  # fmt: skip
            continue
        row[5] += 1
        row[6] = min(row[6] + obs, MAX_BIGINT)
        row[7] = _opt(row[7], value, lambda a, b: a + b)
        row[8] = _opt(row[8], low, min)
        row[9] = _opt(row[9], high, max)
        if m.time_ns > row[11]:
            row[10], row[11] = value, m.time_ns
        if m.explicit_bounds is not None and (row[12] is None or m.explicit_bounds > row[12]):
            row[12] = m.explicit_bounds
        counts = m.bucket_counts
        if row[13] is None:
            row[13] = counts
        elif counts is not None and len(counts) == len(row[13]):
            row[13] = [min(a + b, MAX_BIGINT) for a, b in zip(row[13], counts, strict=True)]
    return [(NsTime(k[0]), *k[1:], *v[:11], NsTime(v[11]), *v[12:]) for k, v in rows.items()]


def _opt(a: Any, b: Any, f: Any) -> Any:
    if a is None:
        return b
    return a if b is None else f(a, b)


def cost_rows(items: Iterable[CostItem]) -> list[tuple[Any, ...]]:
    """Rows of ``cost_daily`` (one per UTC day and dimensions)."""
    rows: dict[tuple[Any, ...], list[Any]] = {}
    for item in items:
        c = item.call
        key = (c.time_ns - c.time_ns % _DAY_NS, item.org_id, c.provider, c.model,
               c.agent_id or "", c.subsystem)  # fmt: skip
        row = rows.get(key)
        if row is None:
            row = rows[key] = [0, Decimal(0), 0, 0, 0, 0]
        row[0] += 1
        row[1] += item.cost_usd
        row[2] = min(row[2] + c.input_tokens, MAX_BIGINT)
        row[3] = min(row[3] + c.output_tokens, MAX_BIGINT)
        row[4] = min(row[4] + c.cache_read_tokens, MAX_BIGINT)
        row[5] = min(row[5] + c.cache_creation_tokens, MAX_BIGINT)
    return [(NsTime(k[0]), *k[1:], *v) for k, v in rows.items()]


def rollup_rows(
    spans: Sequence[tuple[uuid.UUID, SpanRow]],
    events: Sequence[tuple[uuid.UUID, EventRow]],
    points: Sequence[tuple[uuid.UUID, MetricPointRow]],
    costs: Sequence[CostItem],
) -> dict[str, list[tuple[Any, ...]]]:
    """1 min rows of every base family (temp table column order), from newly inserted rows."""
    rows = span_rollup_rows(spans)
    rows["damn_heartbeats"] = heartbeat_rows(events)
    rows["metric_rollup"] = metric_rows(points)
    rows["cost_daily"] = cost_rows(costs)
    return rows

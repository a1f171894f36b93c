"""What a reader wants to know of a trace beyond its spans (pure; no I/O).

The tree (depth, self time, waterfall offset, orphan marks; ``storage.read.span_tree``),
the critical path with each span's contribution (``storage.read.critical_path``) and the
per-trace totals. A pruned trace (spans deleted by sampling) has only the summary's
totals, its costs, and no tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from storage.read._trace_records import Trace
from storage.read.critical_path import CriticalPath, critical_path_of
from storage.read.span_tree import Placement, SpanForest, place


@dataclass(frozen=True, slots=True)
class TraceTotals:
    """Per-trace totals."""

    services: tuple[str, ...]
    span_count: int
    error_count: int
    duration_us: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class TraceAnalysis:
    """The tree, critical path and totals of one trace."""

    order: tuple[bytes, ...]  # span ids depth first, children by start (the waterfall)
    placements: dict[bytes, Placement]
    critical_path: CriticalPath
    totals: TraceTotals
    orphan_count: int


def analyse(trace: Trace) -> TraceAnalysis:
    """The tree, critical path and totals of ``trace``."""
    forest = SpanForest.build(trace.spans)
    start = min((s.start_us for s in trace.spans), default=trace.summary.start_us)
    placements = place(forest, start)
    return TraceAnalysis(
        order=tuple(forest.preorder()),
        placements=placements,
        critical_path=critical_path_of(forest),
        totals=totals(trace),
        orphan_count=len(forest.orphans),
    )


def totals(trace: Trace) -> TraceTotals:
    """Services, span and error counts, duration, LLM calls, tokens and cost of a trace."""
    summary = trace.summary
    if trace.spans:
        services = tuple(sorted({s.service_name for s in trace.spans if s.service_name}))
        spans, errors = len(trace.spans), sum(1 for s in trace.spans if s.status_code == 2)
        duration = max(s.end_us for s in trace.spans) - min(s.start_us for s in trace.spans)
    else:
        services = (summary.root_service_name,) if summary.root_service_name else ()
        spans, errors, duration = summary.span_count, summary.error_count, summary.duration_us
    return TraceTotals(
        services=services,
        span_count=spans,
        error_count=errors,
        duration_us=duration,
        llm_calls=len(trace.costs),
        input_tokens=sum(c.tokens_in for c in trace.costs),
        output_tokens=sum(c.tokens_out for c in trace.costs),
        cost_usd=sum((c.cost_usd for c in trace.costs), Decimal(0)),
    )

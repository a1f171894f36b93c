"""Rows derived from newly inserted raw rows: trace summaries, task runs, agents, costs.

Pure functions: the writer calls them with the rows it actually inserted, so a retried
export (whose raw rows are duplicates and were not inserted) changes no aggregate.
Each returns rows sorted by key, so that concurrent writers lock rows in the same order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from storage.ingest.pricing import PriceBook, Usage, cost_usd
from storage.ingest.rows import AgentSighting, LlmCall, SpanRow, TaskRunSighting

STATUS_ERROR = 2
TERMINAL_STATUSES = ("succeeded", "failed", "canceled")


@dataclass(slots=True)
class TraceSummary:
    """Aggregate of a trace's spans in one write."""

    org_id: uuid.UUID
    trace_id: bytes
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    root_service_name: str | None
    root_span_name: str | None
    task_run_id: str | None


@dataclass(slots=True)
class TaskRunUpdate:
    """Aggregate of a task run's sightings in one write."""

    org_id: uuid.UUID
    task_run_id: str
    task_id: str | None
    agent_id: str | None
    status: str | None
    start_ns: int
    end_ns: int
    root_start_ns: int | None
    root_end_ns: int | None
    trace_id: bytes
    task_title: str | None


@dataclass(frozen=True, slots=True)
class CostItem:
    """A priced LLM call (a row of ``cost_line_items``)."""

    org_id: uuid.UUID
    call: LlmCall
    cost_usd: Decimal
    source: str  # explicit, priced, unpriced
    price_id: int | None


def trace_summaries(spans: Iterable[tuple[uuid.UUID, SpanRow]]) -> list[TraceSummary]:
    """One summary per (org, trace) among ``spans``."""
    by_key: dict[tuple[uuid.UUID, bytes], TraceSummary] = {}
    for org_id, span in spans:
        key = (org_id, span.trace_id)
        is_root = span.parent_span_id is None
        summary = by_key.get(key)
        if summary is None:
            by_key[key] = TraceSummary(
                org_id,
                span.trace_id,
                span.start_ns,
                span.end_ns,
                1,
                int(span.status_code == STATUS_ERROR),
                span.service_name if is_root else None,
                span.name if is_root else None,
                span.task_run_id,
            )
            continue
        summary.start_ns = min(summary.start_ns, span.start_ns)
        summary.end_ns = max(summary.end_ns, span.end_ns)
        summary.span_count += 1
        summary.error_count += span.status_code == STATUS_ERROR
        if is_root:
            summary.root_service_name, summary.root_span_name = span.service_name, span.name
        summary.task_run_id = summary.task_run_id or span.task_run_id
    return [by_key[k] for k in sorted(by_key)]


def task_run_updates(sightings: Iterable[tuple[uuid.UUID, TaskRunSighting]]) -> list[TaskRunUpdate]:
    """One update per (org, task run) among ``sightings``."""
    by_key: dict[tuple[uuid.UUID, str], TaskRunUpdate] = {}
    for org_id, s in sightings:
        key = (org_id, s.task_run_id)
        update = by_key.get(key)
        if update is None:
            update = by_key[key] = TaskRunUpdate(
                org_id, s.task_run_id, s.task_id, s.agent_id, None,
                s.start_ns, s.end_ns, None, None, s.trace_id, s.task_title,
            )  # fmt: skip
        update.start_ns = min(update.start_ns, s.start_ns)
        update.end_ns = max(update.end_ns, s.end_ns)
        update.task_id = update.task_id or s.task_id
        update.agent_id = update.agent_id or s.agent_id
        update.task_title = update.task_title or s.task_title
        if s.is_root:  # the run's own span says who ran it, when, and in which trace
            update.root_start_ns, update.root_end_ns = s.start_ns, s.end_ns
            update.trace_id = s.trace_id
            update.agent_id = s.agent_id or update.agent_id
        if s.status is not None and (update.status not in TERMINAL_STATUSES or s.is_root):
            update.status = s.status
    return [by_key[k] for k in sorted(by_key)]


def latest_agents(
    sightings: Iterable[tuple[uuid.UUID, AgentSighting]],
) -> list[tuple[uuid.UUID, AgentSighting]]:
    """The newest sighting per (org, agent), with the newest heartbeat kept."""
    newest: dict[tuple[uuid.UUID, str], AgentSighting] = {}
    beats: dict[tuple[uuid.UUID, str], AgentSighting] = {}
    for org_id, s in sightings:
        key = (org_id, s.agent_id)
        if key not in newest or s.seen_ns >= newest[key].seen_ns:
            newest[key] = s
        if s.heartbeat_ns is not None and (
            key not in beats or s.heartbeat_ns >= (beats[key].heartbeat_ns or 0)
        ):
            beats[key] = s
    out: list[tuple[uuid.UUID, AgentSighting]] = []
    for key in sorted(newest):
        s, beat = newest[key], beats.get(key)
        if beat is not None and beat is not s:
            s = AgentSighting(
                s.agent_id, s.fleet_id or beat.fleet_id, s.name, s.subsystem, s.service_name,
                s.version, max(s.seen_ns, beat.seen_ns), s.resource_attributes,
                beat.heartbeat_ns, beat.status,
            )  # fmt: skip
        out.append((key[0], s))
    return out


_DAY_NS = 86_400 * 10**9
_EPOCH = date(1970, 1, 1)


def _day(time_ns: int) -> date:
    return _EPOCH + timedelta(days=time_ns // _DAY_NS)


def price_calls(calls: Iterable[tuple[uuid.UUID, LlmCall]], book: PriceBook) -> list[CostItem]:
    """Prices each call: an explicit cost wins, else the price table, else zero (unpriced)."""
    items: list[CostItem] = []
    for org_id, call in calls:
        if call.explicit_cost_usd is not None:
            items.append(
                CostItem(org_id, call, Decimal(repr(call.explicit_cost_usd)), "explicit", None)
            )
            continue
        day = _day(call.time_ns)
        price = book.find(org_id, call.provider, call.model, day)
        if price is None:
            items.append(CostItem(org_id, call, Decimal(0), "unpriced", None))
            continue
        usage = Usage(
            call.input_tokens,
            call.output_tokens,
            call.cache_read_tokens,
            call.cache_creation_tokens,
        )
        items.append(CostItem(org_id, call, cost_usd(price, usage), "priced", price.price_id))
    return items

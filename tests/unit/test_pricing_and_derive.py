"""Pricing and derived aggregates: pure logic, no database."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from storage.ingest._derive import price_calls, task_run_updates, trace_summaries
from storage.ingest.pricing import Price, PriceBook, Usage, cost_usd, read_shipped_prices
from storage.ingest.rows import LlmCall, SpanRow, TaskRunSighting

ORG = uuid.UUID(int=1)
OTHER = uuid.UUID(int=2)


def price(model: str = "gpt-4o", *, org: uuid.UUID | None = None, since: date = date(2025, 1, 1),
          inp: str = "2.50", out: str = "10", read: str | None = "1.25", write: str | None = None) -> Price:  # fmt: skip
    return Price(None, org, "openai", model, since, Decimal(inp), Decimal(out),
                 Decimal(read) if read else None, Decimal(write) if write else None)  # fmt: skip


def test_cached_tokens_inside_input_are_priced_once() -> None:
    # 1M input of which 200k cache reads: 800k at 2.50 + 200k at 1.25 + 100k out at 10
    assert cost_usd(price(), Usage(1_000_000, 100_000, 200_000)) == Decimal("3.25")


def test_cache_counts_larger_than_input_are_additive() -> None:
    # Anthropic style: 1,000 uncached input reported beside 10,000 cache reads
    p = price("claude", inp="3", out="15", read="0.30", write="3.75")
    assert cost_usd(p, Usage(1_000, 0, 10_000, 1_000)) == Decimal("0.00975")


def test_missing_cache_price_falls_back_to_input_price() -> None:
    assert cost_usd(price(read=None), Usage(100, 0, 100)) == Decimal("0.00025")


def test_org_override_and_effective_dates() -> None:
    old = price(since=date(2024, 1, 1), inp="5")
    new = price(since=date(2025, 6, 1), inp="2.50")
    mine = price(org=ORG, since=date(2025, 1, 1), inp="1")
    book = PriceBook([old, new, mine])
    assert book.find(ORG, "openai", "gpt-4o", date(2025, 7, 1)) is mine
    assert book.find(OTHER, "openai", "gpt-4o", date(2025, 7, 1)) is new
    assert book.find(OTHER, "openai", "gpt-4o", date(2025, 2, 1)) is old
    assert book.find(OTHER, "openai", "gpt-4o", date(2020, 1, 1)) is old  # predates every row
    assert book.find(OTHER, "azure.ai.openai", "GPT-4O", date(2025, 7, 1)) is new
    assert book.find(OTHER, "openai", "gpt-4o-mini", date(2025, 7, 1)) is None


def test_shipped_table_prices_dated_model_names() -> None:
    rows = read_shipped_prices()
    assert len(rows) >= 15
    assert all(r["source"] for r in rows)
    book = PriceBook(Price(i, None, *(r[k] for k in (  # type: ignore[arg-type]
        "provider", "model_pattern", "effective_from", "input_per_mtok", "output_per_mtok",
        "cache_read_per_mtok", "cache_creation_per_mtok"))) for i, r in enumerate(rows))  # fmt: skip
    found = book.find(ORG, "anthropic", "claude-sonnet-4-20250514", date(2026, 1, 1))
    assert found is not None
    assert found.input_per_mtok == Decimal("3.00")
    mini = book.find(ORG, "openai", "gpt-4o-mini-2024-07-18", date(2026, 1, 1))
    assert mini is not None
    assert mini.input_per_mtok == Decimal("0.15")


def _call(cost: float | None, model: str = "gpt-4o") -> LlmCall:
    return LlmCall(b"t" * 16, b"s" * 8, 1_780_000_000 * 10**9, "run", "a", "MOSAIC", "openai", model,
                   1000, 100, 0, 0, cost)  # fmt: skip


def test_explicit_cost_wins_and_unknown_models_are_unpriced() -> None:
    book = PriceBook([price()])
    items = price_calls(
        [(ORG, _call(0.5)), (ORG, _call(None)), (ORG, _call(None, "mystery"))], book
    )
    assert [(i.source, i.cost_usd) for i in items] == [
        ("explicit", Decimal("0.5")),
        ("priced", Decimal("0.0035")),
        ("unpriced", Decimal(0)),
    ]


def _sighting(agent: str, *, root: bool, start: int, status: str | None = None) -> TaskRunSighting:
    return TaskRunSighting("run", "task", agent, status, start, start + 10, b"t" * 16, root,
                           span_id=start.to_bytes(8, "big"))  # fmt: skip


def test_the_runs_own_span_names_its_agent_and_status() -> None:
    [update] = task_run_updates([
        (ORG, _sighting("worker", root=False, start=5, status="failed")),
        (ORG, _sighting("orchestrator", root=True, start=1, status="succeeded")),
        (ORG, _sighting("worker-2", root=False, start=7)),
    ])  # fmt: skip
    assert update.agent_id == "orchestrator"
    assert update.status == "succeeded"
    assert (update.start_ns, update.end_ns) == (1, 17)
    assert (update.root_start_ns, update.root_end_ns) == (1, 11)


def _span(trace: bytes, n: int, parent: bool, error: bool = False) -> SpanRow:
    return SpanRow(trace, n.to_bytes(8, "big"), b"p" * 8 if parent else None, None, f"op{n}", 0,
                   n, n + 5, 2 if error else 0, None, "SYSTEM", "svc", None, None, None, None,
                   None, None, None, None, None, {}, {})  # fmt: skip


def test_trace_summaries_count_errors_and_find_the_root() -> None:
    t1, t2 = b"1" * 16, b"2" * 16
    summaries = trace_summaries([(ORG, _span(t1, 3, True, True)), (ORG, _span(t1, 1, False)),
                                 (ORG, _span(t2, 9, True))])  # fmt: skip
    by_trace = {s.trace_id: s for s in summaries}
    assert (by_trace[t1].span_count, by_trace[t1].error_count, by_trace[t1].root_span_name) == (
        2,
        1,
        "op1",
    )
    assert (by_trace[t1].start_ns, by_trace[t1].end_ns) == (1, 8)
    assert by_trace[t2].root_span_name is None

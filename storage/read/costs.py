"""Cost and tokens of the current org per day, week or month, by any dimension.

Whole UTC days come from ``cost_daily``; the partial days at the range's edges from the
line items themselves, so totals equal the sum of the line items in ``[start, end)``
exactly (numeric, to the cent and beyond). ``top`` keeps the ``top`` most expensive groups
and folds the rest into one ``other`` group, so the totals still add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from storage.errors import InvalidInputError
from storage.read._common import ceil_to, check_span, floor_to
from storage.read._sql.costs import COST_DIMS, MEASURES, Period, cost_rows

DAY = 86400
MAX_COST_RANGE = timedelta(days=400)
OTHER = "(other)"


@dataclass(frozen=True, slots=True)
class CostTotals:
    """Calls, USD and tokens."""

    calls: int
    cost_usd: Decimal
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_creation_tokens: int

    @staticmethod
    def zero() -> CostTotals:
        """Nothing spent."""
        return CostTotals(0, Decimal(0), 0, 0, 0, 0)

    def __add__(self, other: CostTotals) -> CostTotals:
        return CostTotals(*(getattr(self, m) + getattr(other, m) for m in MEASURES))


@dataclass(frozen=True, slots=True)
class CostGroup:
    """One group (its dimension values, ``(other)`` for the folded rest) in one period."""

    period: datetime | None
    key: dict[str, str]
    totals: CostTotals


@dataclass(frozen=True, slots=True)
class CostReport:
    """Groups (by period, then cost descending), and the totals of everything."""

    groups: tuple[CostGroup, ...]
    totals: CostTotals
    start: datetime
    end: datetime


def pieces(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """Whole days from ``cost_daily``, partial-day edges from the line items."""
    d0, d1 = ceil_to(start, DAY), floor_to(end, DAY)
    if d0 >= d1:
        return [("items", start, end)]
    out = [("daily", d0, d1)]
    out += [("items", a, b) for a, b in ((start, d0), (d1, end)) if a < b]
    return out


def _totals(row: Any) -> CostTotals:
    return CostTotals(
        int(row.calls),
        Decimal(row.cost_usd),
        int(row.tokens_in),
        int(row.tokens_out),
        int(row.cache_read_tokens),
        int(row.cache_creation_tokens),
    )


def cost_report(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    group_by: Sequence[str] = (),
    period: Period | None = None,
    top: int | None = None,
) -> CostReport:
    """Costs over ``[start, end)`` grouped by ``period`` and ``group_by``.

    Raises:
        InvalidInputError: an unknown dimension, or a bad range.
        QueryTooBroadError: a range over 400 days.
    """
    check_span(start, end, MAX_COST_RANGE, "costs")
    bad = [d for d in group_by if d not in COST_DIMS]
    if bad:
        raise InvalidInputError(f"unknown cost dimension {bad[0]!r}; use {', '.join(COST_DIMS)}")
    dims = list(dict.fromkeys(group_by))
    rows = conn.execute(cost_rows(pieces(start, end), dims, period)).all()
    groups = [
        CostGroup(r._mapping.get("period"), {d: getattr(r, d) for d in dims}, _totals(r))
        for r in rows
    ]
    if top is not None and dims:
        groups = _fold(groups, dims, top)
    groups.sort(
        key=lambda g: (
            g.period or start,
            OTHER in g.key.values(),
            -g.totals.cost_usd,
            sorted(g.key.items()),
        )
    )
    grand = sum((g.totals for g in groups), CostTotals.zero())
    return CostReport(tuple(groups), grand, start, end)


def _fold(groups: list[CostGroup], dims: list[str], top: int) -> list[CostGroup]:
    """Keeps the ``top`` groups by cost over the whole range; the rest become ``(other)``."""
    by_key: dict[tuple[str, ...], Decimal] = {}
    for g in groups:
        k = tuple(g.key[d] for d in dims)
        by_key[k] = by_key.get(k, Decimal(0)) + g.totals.cost_usd
    keep = {k for k, _ in sorted(by_key.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
    out: list[CostGroup] = []
    other: dict[datetime | None, CostTotals] = {}
    for g in groups:
        if tuple(g.key[d] for d in dims) in keep:
            out.append(g)
        else:
            other[g.period] = other.get(g.period, CostTotals.zero()) + g.totals
    out += [CostGroup(p, dict.fromkeys(dims, OTHER), t) for p, t in other.items()]
    return out

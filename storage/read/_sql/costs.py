"""Named statements of the cost readers: ``cost_daily`` for whole UTC days, the line
items for the partial days at a range's edges, so any range is exact to the cent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, literal, select, union_all

from storage.schema import agents, cost_daily, cost_line_items

Period = Literal["day", "week", "month"]
COST_DIMS = ("model", "provider", "agent", "fleet", "subsystem")
MEASURES = (
    "calls",
    "cost_usd",
    "tokens_in",
    "tokens_out",
    "cache_read_tokens",
    "cache_creation_tokens",
)


def _daily(lo: datetime, hi: datetime) -> Select[Any]:
    d = cost_daily
    return select(
        d.c.org_id,
        d.c.bucket.label("time"),
        d.c.provider,
        d.c.model,
        d.c.agent_id,
        d.c.subsystem,
        *(d.c[m] for m in MEASURES),
    ).where(d.c.bucket >= lo, d.c.bucket < hi)


def _items(lo: datetime, hi: datetime) -> Select[Any]:
    c = cost_line_items
    return select(
        c.c.org_id,
        c.c.time,
        c.c.provider,
        c.c.model,
        func.coalesce(c.c.agent_id, "").label("agent_id"),
        c.c.subsystem,
        literal(1).label("calls"),
        c.c.cost_usd,
        c.c.tokens_in,
        c.c.tokens_out,
        c.c.cache_read_tokens,
        c.c.cache_creation_tokens,
    ).where(c.c.time >= lo, c.c.time < hi)


def cost_rows(
    pieces: Sequence[tuple[str, datetime, datetime]],
    dims: Sequence[str],
    period: Period | None,
) -> Select[Any]:
    """Costs over ``pieces`` (``("daily"|"items", lo, hi)``) grouped by ``period`` and
    ``dims`` (any of :data:`COST_DIMS`); the period column is ``period`` (UTC)."""
    parts = [_daily(lo, hi) if kind == "daily" else _items(lo, hi) for kind, lo, hi in pieces]
    u = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("c")
    source: Any = u
    keys: list[ColumnElement[Any]] = []
    if period is not None:
        keys.append(func.date_trunc(period, u.c.time, "UTC").label("period"))
    for dim in dims:
        if dim == "agent":
            keys.append(u.c.agent_id.label("agent"))
        elif dim == "fleet":
            source = u.outerjoin(
                agents, and_(agents.c.org_id == u.c.org_id, agents.c.agent_id == u.c.agent_id)
            )
            keys.append(func.coalesce(agents.c.fleet_id, "").label("fleet"))
        else:
            keys.append(u.c[dim].label(dim))
    sums = [func.coalesce(func.sum(u.c[m]), 0).label(m) for m in MEASURES]
    stmt = select(*keys, *sums).select_from(source)
    if keys:
        stmt = stmt.group_by(*keys).order_by(*keys)
    return stmt

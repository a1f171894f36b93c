"""Named statements of the subsystem views not built by ``rollups.rollup_select``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from storage.schema import spans

CHURN_OPERATIONS = ("write", "evict")


def context_churn(start: datetime, end: datetime, limit: int) -> Select[Any]:
    """UCE contexts by churn (writes and evictions) over ``[start, end)``, from raw spans."""
    s = spans
    ctx = s.c.attributes["uce.context.id"].astext
    op = s.c.attributes["uce.operation.name"].astext
    churn = func.count().filter(op.in_(CHURN_OPERATIONS))
    return (
        select(
            ctx.label("context_id"),
            func.count().label("ops"),
            churn.label("churn"),
            func.count(func.distinct(s.c.agent_id)).label("agents"),
            func.max(s.c.start_time).label("last_op_at"),
        )
        .where(
            s.c.start_time >= start,
            s.c.start_time < end,
            func.jsonb_typeof(s.c.attributes["uce.context.id"]) == "string",
        )
        .group_by(ctx)
        .order_by(churn.desc(), func.count().desc(), ctx)
        .limit(limit)
    )

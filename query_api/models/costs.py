"""Costs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from query_api.models.overview import CostTotalsOut


class CostRowOut(BaseModel):
    """One group in one period (dimensions not grouped by are null)."""

    period: datetime | None
    model: str | None = None
    provider: str | None = None
    agent: str | None = None
    fleet: str | None = None
    subsystem: str | None = None
    calls: int
    cost_usd: Decimal
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_creation_tokens: int


class CostReportOut(BaseModel):
    """Cost groups and their totals (equal to the sum of the line items in the range)."""

    data: list[CostRowOut]
    totals: CostTotalsOut
    start: datetime
    end: datetime

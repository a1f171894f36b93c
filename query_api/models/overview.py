"""The org overview."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import ConfigDict

from query_api.models._base import CoverageOut, RedOut, ViewModel


class CostTotalsOut(ViewModel):
    """Calls, USD (exact decimal) and tokens."""

    calls: int
    cost_usd: Decimal
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_creation_tokens: int


class ModelCostOut(ViewModel):
    """One model's cost in a period (``(other)`` folds the rest)."""

    key: dict[str, str]
    totals: CostTotalsOut


class PeriodOut(ViewModel):
    """What happened in one period."""

    start: datetime
    end: datetime
    red: RedOut
    success_rate: float | None
    throughput_per_min: float
    task_runs: dict[str, int]
    cost: CostTotalsOut
    top_models: list[ModelCostOut]
    coverage: CoverageOut


class OverviewOut(ViewModel):
    """The org overview: the requested range, today and month to date (UTC)."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [{"agents": {"online": 5, "degraded": 1, "offline": 2}, "alerts_firing": 0}]
        },
    )

    range: PeriodOut
    today: PeriodOut
    month_to_date: PeriodOut
    agents: dict[str, int]
    alerts_firing: int

"""Budget arithmetic (pure): calendar periods, the ladder and the month-end forecast.

Periods are UTC calendar days or months (``cost_daily`` buckets are UTC days). The spend
of the current period includes today's partial day.

**Forecast** (month periods only): linear on month to date,
``projected = spend_to_date / elapsed_days * days_in_month``, where ``elapsed_days`` is the
time since the month began in days, counted as at least :data:`MIN_FORECAST_DAYS` so that
one expensive first morning does not project a month. The forecast step fires once per
month when ``projected >= amount`` while the spend itself is still below it. It is simple
and explainable; a weekday-weighted projection would suit workloads with quiet weekends
better and is left for later.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MIN_FORECAST_DAYS = 3.0
FORECAST_STEP = "forecast"


@dataclass(frozen=True, slots=True)
class Period:
    """A budget period: its label (``2026-12`` or ``2026-12-01``) and bounds."""

    label: str
    start: datetime
    end: datetime


def period_of(now: datetime, kind: str) -> Period:
    """The UTC calendar day or month containing ``now``."""
    now = now.astimezone(UTC)
    if kind == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Period(start.date().isoformat(), start, start + timedelta(days=1))
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(start.year, start.month)[1]
    return Period(start.strftime("%Y-%m"), start, start + timedelta(days=days))


def forecast(spend: float, period: Period, now: datetime) -> float:
    """Linear projection of ``spend`` to the end of ``period`` (see the module docstring)."""
    elapsed = max((now - period.start).total_seconds() / 86400, MIN_FORECAST_DAYS)
    days = (period.end - period.start).total_seconds() / 86400
    return spend / elapsed * days


def reached_steps(
    spend: float,
    amount: float,
    ladder: Sequence[int],
    projected: float | None,
) -> list[str]:
    """The ladder steps (percent, as text) that ``spend`` reaches, plus the forecast step."""
    steps = [str(p) for p in ladder if spend >= amount * p / 100]
    if projected is not None and projected >= amount > spend:
        steps.append(FORECAST_STEP)
    return steps

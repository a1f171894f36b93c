"""Anomaly score (pure): a seasonal-naive forecast plus a z-score, as SigNoz does.

With season length ``L`` and the series ``x`` in steps (1 min for hourly seasonality, 1 h
for daily and weekly), for the last complete step ``t``:

- *past period*: the mean of the :data:`MOVING` steps ending one season ago (``t - L``);
- *current season*: the steps of ``[t - L, t)``; *past seasons* ``k = 1..3``: the steps of
  ``[t - (k+1)L, t - kL)``;
- ``expected = past_period + mean(current season) - mean(mean(past season k))``
  (the past period alone if that is negative), i.e. last season's value shifted by how
  much the level moved since;
- ``score = (x[t] - expected) / stddev(current season)``; the rule breaches when the
  score passes ``z`` in its direction (default above, z = 3).

Without a value at ``t``, without enough history (every past season needs a value) or with
a flat current season (stddev 0) there is no score: the evaluation has no data.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

MOVING = 7
SEASONS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}
STEPS = {"hourly": timedelta(minutes=1), "daily": timedelta(hours=1), "weekly": timedelta(hours=1)}


@dataclass(frozen=True, slots=True)
class Score:
    """A value, what was expected and how unusual it is."""

    value: float
    expected: float
    stddev: float
    score: float


def history_start(t: datetime, seasonality: str) -> datetime:
    """How far back the series must go for a score at step ``t``."""
    return t - 4 * SEASONS[seasonality] - MOVING * STEPS[seasonality]


def _window(series: Mapping[datetime, float | None], start: datetime, end: datetime) -> list[float]:
    return [v for b, v in series.items() if start <= b < end and v is not None]


def score(series: Mapping[datetime, float | None], t: datetime, seasonality: str) -> Score | None:
    """The anomaly score of step ``t`` (see the module docstring), or None without one."""
    season, step = SEASONS[seasonality], STEPS[seasonality]
    value = series.get(t)
    if value is None:
        return None
    past = _window(series, t - season - (MOVING - 1) * step, t - season + step)
    current = _window(series, t - season, t)
    olds = [_window(series, t - (k + 1) * season, t - k * season) for k in (1, 2, 3)]
    if not past or len(current) < 2 or not all(olds):
        return None
    stddev = statistics.pstdev(current)
    if stddev == 0:
        return None
    level_shift = statistics.fmean(current) - statistics.fmean([statistics.fmean(o) for o in olds])
    expected = statistics.fmean(past) + level_shift
    if expected < 0:
        expected = statistics.fmean(past)
    return Score(value, expected, stddev, (value - expected) / stddev)


def breaches(s: Score, z: float, direction: str) -> bool:
    """Whether a score passes ``z`` in ``direction`` (above, below or both)."""
    if direction == "above":
        return s.score >= z
    if direction == "below":
        return s.score <= -z
    return abs(s.score) >= z

"""What every reader shares: rollup levels, how a range is cut into them, limits.

A range ``[start, end)`` is answered from the rollups *exactly to the minute*: it is
widened outward to whole minutes, then cut into whole days (read from the ``_1d``
relation), whole hours at the edges (``_1h``) and whole minutes at the edges of those
(``_1m``). Counts add and histograms merge exactly, so the answer equals the one computed
from raw rows over the widened range, while reading at most ~160 rows per series and
dimension. Where an org's retention no longer holds a level at an edge, that edge is read
from the next coarser level instead (its bucket widened outward), and the answer says so
(``Coverage.start`` moves earlier).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, select

from storage.errors import InvalidInputError
from storage.schema import orgs, retention_tiers

Level = Literal["1m", "1h", "1d"]
LEVELS: tuple[Level, ...] = ("1m", "1h", "1d")
LEVEL_SECONDS: Mapping[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}
#: The retention data class that holds each level.
LEVEL_CLASS: Mapping[str, str] = {"1m": "rollup_1m", "1h": "rollup_1h", "1d": "rollup_1d"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class QueryTooBroadError(InvalidInputError):
    """The request would read too much; the message (and ``advice``) says what to narrow."""

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(f"{message}; {advice}" if advice else message)
        self.advice = advice


def floor_to(t: datetime, seconds: int) -> datetime:
    """``t`` rounded down to a multiple of ``seconds`` since the epoch (UTC)."""
    s = math.floor((t - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=s - s % seconds)


def ceil_to(t: datetime, seconds: int) -> datetime:
    """``t`` rounded up to a multiple of ``seconds`` since the epoch (UTC)."""
    f = floor_to(t, seconds)
    return f if f == t else f + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Segment:
    """Buckets ``[lo, hi)`` of one level."""

    level: Level
    lo: datetime
    hi: datetime


@dataclass(frozen=True, slots=True)
class Coverage:
    """What a rollup answer covers: the range read and the levels it was read from."""

    start: datetime
    end: datetime
    levels: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class Availability:
    """The earliest bucket start each level still holds (None: no limit)."""

    earliest: Mapping[str, datetime | None]

    def holds(self, level: str, t: datetime) -> bool:
        """Whether ``level`` still holds the bucket starting at ``t``."""
        first = self.earliest.get(level)
        return first is None or t >= first

    @staticmethod
    def unlimited() -> Availability:
        """No retention limit (staff platform rollups)."""
        return Availability({})


def _cut(
    lo: datetime, hi: datetime, level: Level
) -> tuple[list[Segment], list[tuple[datetime, datetime]]]:
    """Whole ``level`` buckets inside ``[lo, hi)`` and the edge pieces left over."""
    width = LEVEL_SECONDS[level]
    a, b = ceil_to(lo, width), floor_to(hi, width)
    if a >= b:
        return [], [(lo, hi)] if lo < hi else []
    edges = [(x, y) for x, y in ((lo, a), (b, hi)) if x < y]
    return [Segment(level, a, b)], edges


def segments(start: datetime, end: datetime, available: Availability) -> list[Segment]:
    """``[start, end)`` widened to minutes and cut into day, hour and minute buckets.

    An edge a level no longer holds is widened outward to the next coarser level.
    """
    lo, hi = floor_to(start, 60), ceil_to(end, 60)
    days, rest = _cut(lo, hi, "1d")
    out: list[Segment] = list(days)
    for a, b in rest:
        hours, minutes = _cut(a, b, "1h")
        out.extend(hours)
        out.extend(Segment("1m", x, y) for x, y in minutes)
    return _respect_retention(out, available)


def _respect_retention(parts: list[Segment], available: Availability) -> list[Segment]:
    out: list[Segment] = []
    for seg in parts:
        level: Level = seg.level
        lo, hi = seg.lo, seg.hi
        while not available.holds(level, lo) and level != "1d":
            level = LEVELS[LEVELS.index(level) + 1]
            lo, hi = floor_to(lo, LEVEL_SECONDS[level]), ceil_to(hi, LEVEL_SECONDS[level])
        out.append(Segment(level, lo, hi))
    # Widened edges may now overlap a neighbour of the same level: merge them.
    merged: list[Segment] = []
    for seg in sorted(out, key=lambda s: (s.level, s.lo)):
        last = merged[-1] if merged else None
        if last is not None and last.level == seg.level and seg.lo <= last.hi:
            merged[-1] = Segment(seg.level, last.lo, max(last.hi, seg.hi))
        else:
            merged.append(seg)
    return _drop_covered(merged)


def _drop_covered(parts: list[Segment]) -> list[Segment]:
    """Finer pieces inside a coarser piece (after widening) are read by the coarser one."""
    keep: list[Segment] = []
    for seg in parts:
        inside = any(
            LEVELS.index(o.level) > LEVELS.index(seg.level) and o.lo <= seg.lo and seg.hi <= o.hi
            for o in parts
        )
        if not inside:
            keep.append(seg)
    return sorted(keep, key=lambda s: s.lo)


def coverage(parts: Sequence[Segment]) -> Coverage:
    """The range and levels ``parts`` read."""
    if not parts:
        return Coverage(EPOCH, EPOCH, ())
    levels = tuple(lv for lv in LEVELS if any(p.level == lv for p in parts))
    return Coverage(min(p.lo for p in parts), max(p.hi for p in parts), levels)


def org_availability(conn: Connection, now: datetime) -> Availability:
    """What the current tenant org's retention still holds of each rollup level.

    Reads ``orgs`` (row security shows a tenant only its own) and ``retention_tiers``.
    """
    row = conn.execute(select(orgs.c.plan, orgs.c.retention_overrides)).first()
    if row is None:
        return Availability.unlimited()
    return availability(retention_days(conn, row.plan, row.retention_overrides), now)


def retention_days(conn: Connection, plan: str, overrides: Mapping[str, Any]) -> dict[str, int]:
    """Days kept per data class for ``plan`` with ``overrides`` applied."""
    tiers = conn.execute(
        select(retention_tiers.c.data_class, retention_tiers.c.days).where(
            retention_tiers.c.plan == plan
        )
    ).all()
    days = {r.data_class: int(r.days) for r in tiers}
    days.update({k: int(v) for k, v in overrides.items()})
    return days


def availability(days: Mapping[str, int], now: datetime) -> Availability:
    """Earliest bucket start per level for retention ``days`` per data class.

    A bucket is kept until it ends by the window's start, so the earliest bucket still
    held is the one containing ``now - days``.
    """
    earliest: dict[str, datetime | None] = {}
    for level, data_class in LEVEL_CLASS.items():
        d = days.get(data_class)
        earliest[level] = (
            None if d is None else floor_to(now - timedelta(days=d), LEVEL_SECONDS[level])
        )
    return Availability(earliest)


def check_span(start: datetime, end: datetime, limit: timedelta, what: str) -> None:
    """Refuses ``[start, end)`` when it is empty or longer than ``limit``.

    Raises:
        InvalidInputError: ``end`` is not after ``start``.
        QueryTooBroadError: the range is longer than ``limit``.
    """
    if end <= start:
        raise InvalidInputError("end must be after start")
    if end - start > limit:
        raise QueryTooBroadError(
            f"{what}: the range {end - start} is longer than {limit}; narrow start/end"
        )


def ratio(part: float | int | None, whole: float | int | None) -> float | None:
    """``part / whole``, None when ``whole`` is 0 or unknown."""
    if part is None or not whole:
        return None
    return float(part) / float(whole)


#: Most points a series may have (buckets of one series).
MAX_POINTS = 2000
#: Steps a series picks from when none is given (about 60..200 points).
STEP_CHOICES = tuple(
    timedelta(seconds=s)
    for s in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
)


def default_step(
    start: datetime, end: datetime, available: Availability | None = None
) -> timedelta:
    """The smallest usual step giving at most 200 points over ``[start, end)`` that a
    level the org's retention still holds at ``start`` can serve."""
    span = end - start
    for step in STEP_CHOICES:
        if span / step > 200:
            continue
        s = int(step.total_seconds())
        if available is None or any(
            s % LEVEL_SECONDS[lv] == 0 and available.holds(lv, floor_to(start, s)) for lv in LEVELS
        ):
            return step
    return STEP_CHOICES[-1]


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    """One level and the step-aligned range a series reads."""

    level: Level
    step: timedelta
    start: datetime
    end: datetime

    def segment(self) -> Segment:
        """The whole range as one segment of the level."""
        return Segment(self.level, self.start, self.end)


def series_plan(
    start: datetime, end: datetime, step: timedelta, available: Availability
) -> SeriesPlan:
    """The coarsest level a ``step`` series over ``[start, end)`` can read.

    The level's bucket must divide the step, and the org's retention must still hold the
    level at the (step-aligned) start: a series never reaches past retention.

    Raises:
        InvalidInputError: the step is not a whole number of minutes, or no level fits.
        QueryTooBroadError: more than ``MAX_POINTS`` points.
    """
    seconds = step.total_seconds()
    if seconds < 60 or seconds % 60:
        raise InvalidInputError("step must be a whole number of minutes, at least 1m")
    s = int(seconds)
    lo, hi = floor_to(start, s), ceil_to(end, s)
    if (hi - lo) / step > MAX_POINTS:
        raise QueryTooBroadError(
            f"{(hi - lo) // step} points of {step} exceed {MAX_POINTS}; use a larger step "
            "or a shorter range"
        )
    for level in reversed(LEVELS):
        width = LEVEL_SECONDS[level]
        if s % width == 0 and available.holds(level, lo):
            return SeriesPlan(level, step, lo, hi)
    coarsest = next((lv for lv in reversed(LEVELS) if available.holds(lv, lo)), None)
    if coarsest is None:
        raise InvalidInputError(f"no rollup level still holds data from {lo.isoformat()}")
    raise InvalidInputError(
        f"the retention of the finer levels no longer holds {lo.isoformat()}: use a step that "
        f"is a multiple of {coarsest} or a later start"
    )

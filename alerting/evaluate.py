"""Stage 1, evaluation: a rule's samples at ``now``, read from the rollups.

The connection is already scoped by the caller (an org's rule: that org's tenant; a
platform rule: support). Windows end at the start of ``now``'s minute, so that only
complete 1 min buckets are read and an evaluation at a given time always sees the same
buckets.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from alerting import anomaly, budget
from alerting.states import Outcome, Sample
from storage import alert_engine as store
from storage import alert_measures as measures
from storage import alert_spec as spec

_OPS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget group's spend, projection and the steps it has reached."""

    labels: dict[str, str]
    spend: float
    projected: float | None
    steps: list[str]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation found."""

    outcome: Outcome
    samples: list[Sample] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    period: str | None = None  # budget rules
    budgets: list[BudgetStatus] = field(default_factory=list)

    @property
    def value(self) -> float | None:
        """The value of the worst-looking sample (the first breaching one, else the first)."""
        for s in sorted(self.samples, key=lambda s: not s.breached):
            return s.value
        return None


def minute_floor(now: datetime) -> datetime:
    """The start of ``now``'s minute."""
    return now.replace(second=0, microsecond=0)


def evaluate(conn: Connection, rule: store.RuleRow, now: datetime) -> Evaluation:
    """Evaluates ``rule`` at ``now`` on ``conn`` (scoped by the caller).

    Database errors propagate (the caller records an Error outcome).
    """
    params = spec.parse_params(rule.type, rule.params)
    org = None if rule.scope == "platform" else rule.org_id
    if isinstance(params, spec.ThresholdParams):
        return _threshold(conn, params, org, now)
    if isinstance(params, spec.AnomalyParams):
        return _anomaly(conn, params, org, now)
    if isinstance(params, spec.BudgetParams):
        return _budget(conn, params, rule, now)
    return _heartbeat(conn, params, rule, now)


def _outcome(samples: list[Sample]) -> Outcome:
    return Outcome.OK if samples else Outcome.NO_DATA


def _threshold(conn: Connection, p: spec.ThresholdParams, org: Any, now: datetime) -> Evaluation:
    end = minute_floor(now)
    start = end - timedelta(seconds=p.window_s)
    compare = _OPS[p.op]
    samples = []
    for point in measures.measure_points(conn, p, org, start, end):
        enough = p.is_metric or point.spans >= p.min_spans
        breached = point.value is not None and enough and compare(point.value, p.value)
        samples.append(Sample(point.labels, point.value, breached))
    window = {"start": start.isoformat(), "end": end.isoformat()}
    return Evaluation(_outcome(samples), samples, {"window": window, "threshold": p.value})


def _anomaly(conn: Connection, p: spec.AnomalyParams, org: Any, now: datetime) -> Evaluation:
    step = anomaly.STEPS[p.seasonality]
    unit = "minute" if step == timedelta(minutes=1) else "hour"
    end = (
        now.replace(second=0, microsecond=0)
        if unit == "minute"
        else now.replace(minute=0, second=0, microsecond=0)
    )
    t = end - step
    series = measures.measure_series(
        conn, p, org, anomaly.history_start(t, p.seasonality), end, unit
    )
    s = anomaly.score(series, t, p.seasonality)
    if s is None:
        return Evaluation(Outcome.NO_DATA, details={"step": t.isoformat()})
    sample = Sample({}, s.value, anomaly.breaches(s, p.z, p.direction))
    details = {"step": t.isoformat(), "expected": s.expected, "stddev": s.stddev, "score": s.score}
    return Evaluation(Outcome.OK, [sample], details)


def _budget(
    conn: Connection, p: spec.BudgetParams, rule: store.RuleRow, now: datetime
) -> Evaluation:
    period = budget.period_of(now, p.period)
    samples, statuses = [], []
    for point in measures.spend(conn, p, rule.org_id, period.start, period.end):
        spend = point.value or 0.0
        projected = (
            budget.forecast(spend, period, now) if p.forecast and p.period == "month" else None
        )
        steps = budget.reached_steps(spend, p.amount_usd, p.ladder, projected)
        statuses.append(BudgetStatus(point.labels, spend, projected, steps))
        samples.append(Sample(point.labels, spend, spend >= p.amount_usd))
    details = {"period": period.label, "amount_usd": p.amount_usd}
    return Evaluation(_outcome(samples), samples, details, period.label, statuses)


def _heartbeat(
    conn: Connection, p: spec.HeartbeatParams, rule: store.RuleRow, now: datetime
) -> Evaluation:
    silent_for = timedelta(seconds=p.silent_for_s)
    end = minute_floor(now)
    details: dict[str, Any] = {"silent_for_s": p.silent_for_s}
    if p.target == "metric":
        assert p.metric is not None  # checked by the spec
        last = measures.metric_last_seen(conn, p.metric, rule.org_id, end, silent_for)
        silence = _silence(last, end, silent_for)
        return Evaluation(
            Outcome.OK, [Sample({"metric": p.metric}, silence, silence >= p.silent_for_s)], details
        )
    agents = measures.agent_activity(conn, p, rule.org_id, end)
    if p.target == "agent":
        samples = [
            Sample({"agent_id": a.agent_id}, s, s >= p.silent_for_s)
            for a in agents
            for s in [_silence(a.last_seen, end, silent_for)]
        ]
        return Evaluation(_outcome(samples), samples, details)
    fleets: dict[str, list[measures.AgentActivity]] = defaultdict(list)
    for a in agents:
        if a.fleet_id:
            fleets[a.fleet_id].append(a)
    samples = [
        _fleet_sample(fid, members, p, end, silent_for) for fid, members in sorted(fleets.items())
    ]
    return Evaluation(_outcome(samples), samples, details)


def _silence(last: datetime | None, now: datetime, silent_for: timedelta) -> float:
    """Seconds since ``last`` (not seen in the look-back: the look-back itself)."""
    if last is None:
        return measures.lookback(silent_for).total_seconds()
    return max((now - last).total_seconds(), 0.0)


def _fleet_sample(
    fleet_id: str,
    members: list[measures.AgentActivity],
    p: spec.HeartbeatParams,
    now: datetime,
    silent_for: timedelta,
) -> Sample:
    silences = [_silence(a.last_seen, now, silent_for) for a in members]
    if p.target == "fleet":
        quiet = min(silences)
        return Sample({"fleet_id": fleet_id}, quiet, quiet >= p.silent_for_s)
    offline = sum(
        1
        for a, s in zip(members, silences, strict=True)
        if s >= p.silent_for_s or a.status == "offline"
    )
    pct = 100.0 * offline / len(members)
    return Sample({"fleet_id": fleet_id}, pct, pct > p.offline_pct)

"""``aeos demo``: believable MOSAIC / DAMN / UCE telemetry, sent through the real SDK.

The demo plays a small AEOS platform per org (one ingest key each) and exports it with
the OpenTelemetry Python SDK (``TracerProvider``, ``LoggerProvider``, ``MeterProvider``
and the OTLP exporters) to a running receiver, so a new user sees dashboards fill at
once. Per org, one fleet of agents (``aeos._demo_world``): a MOSAIC orchestrator, a UCE
context engine and DAMN workers. What they send:

- Task runs (``aeos._demo_plan``): the run's span, a routing decision, 1-3 handoffs,
  1-4 LLM calls with ``gen_ai.*`` usage (cache reads and writes on some calls), 1-3 UCE
  context operations, a priced tool call in a quarter of the runs; log-normal latencies
  (p99 ~10x p50), retried rate limits, ~3 % failed runs. Two misbehaving workers (a bad
  canary) fail ~30 % of their runs, are 4x slower and report ``degraded``; with two orgs
  or more the last one runs over budget (long contexts on opus/o3/gpt-4.1).
- DAMN: a ``damn.agent.heartbeat`` log record per agent every ``HEARTBEAT_S`` seconds,
  ``damn.queue.depth``, ``damn.agent.utilization`` and ``damn.agent.heartbeats``.
- UCE: ``uce.cache.requests``, ``uce.context.size``, ``uce.operation.duration``.
- Warning and error log records for failures, retries and slow calls, in their traces.

With two orgs of 6 agents at the default rate (2 runs/s), a minute brings about 120
task runs, 1,050 spans, 320 LLM calls, 230 log records (145 of them heartbeats) and 440
metric points.

Backfill (``backfill_s``): runs and heartbeats with past timestamps over the window,
``BACKFILL_RUNS_PER_DAY`` runs per org and day on a weekday/business-hours curve (fewer
when the window is long: at most ``MAX_BACKFILL_RUNS`` in all) and one heartbeat per
agent every ``BACKFILL_HEARTBEAT_S``. Metrics are not backfilled: the SDK stamps data
points at collection time and cannot backdate them.

The content (agents, plans, tokens, latencies, failures, schedule) is a function of
``seed``; trace, span and task-run ids are fresh on every call, so running the demo
twice adds data instead of colliding with the first run. No global OpenTelemetry
provider is set. On ``KeyboardInterrupt`` what was produced is flushed and the summary
says ``interrupted``.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, NamedTuple

from aeos._demo_emit import Emitter, OrgCounts, shipped_price_book
from aeos._demo_otel import DemoError, OrgPipeline, SimClock, check_reachable, otlp_exporters
from aeos._demo_plan import plan_run
from aeos._demo_world import Agent, Org, build_orgs

__all__ = ["DemoError", "DemoOptions", "DemoSummary", "OrgSummary", "run_demo"]

HEARTBEAT_S: Final = 5.0
BACKFILL_HEARTBEAT_S: Final = 300.0
BACKFILL_RUNS_PER_DAY: Final = 480
MAX_BACKFILL_RUNS: Final = 25_000
MAX_BACKFILL_BEATS: Final = 60_000
BACKFILL_FLUSH_EVERY: Final = 1000  # runs; bounds the processors' queues (no drops)
DAY_S: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What to generate and where to send it.

    Attributes:
        endpoint: OTLP/gRPC ``host:port`` (no scheme), or OTLP/HTTP ``http(s)://host:port``.
        ingest_keys: One ingest key per org; each org gets its own agents.
        agents: Agents per org.
        rate: Task runs per second, all orgs together.
        duration_s: How long to run live (0: backfill only).
        backfill_s: How much history before now to generate as well.
        seed: Seed of everything but the ids.
    """

    endpoint: str
    ingest_keys: list[str]
    agents: int = 6
    rate: float = 2.0
    duration_s: float = 30.0
    backfill_s: float = 0.0
    seed: int = 1


@dataclass(frozen=True, slots=True)
class OrgSummary:
    """What one org's agents sent (all counts are items the receiver acknowledged)."""

    fleet_id: str
    agent_ids: tuple[str, ...]
    degraded_agents: tuple[str, ...]
    over_budget: bool
    task_runs: int
    failed_runs: int
    spans: int
    span_events: int
    llm_calls: int
    log_records: int
    metric_points: int
    expected_cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo sent, in all and per org (in ``ingest_keys`` order).

    Attributes:
        task_runs: Task runs (each has its own span).
        spans: Spans.
        llm_calls: LLM call spans, failed attempts included.
        log_records: Log records (heartbeats, warnings, errors).
        metric_points: Metric data points.
        expected_cost_usd: What the receiver should charge: the shipped price table
            applied to every LLM call with usage, plus the explicit tool costs (exact,
            unless an interrupt cut a call between its usage and its end).
        failed_runs: Task runs that ended ``failed``.
        span_events: Exception events on spans (the receiver stores them as events).
        interrupted: Whether a ``KeyboardInterrupt`` ended the demo early.
        orgs: The same per org.
    """

    task_runs: int
    spans: int
    llm_calls: int
    log_records: int
    metric_points: int
    expected_cost_usd: Decimal
    failed_runs: int
    span_events: int
    interrupted: bool
    orgs: tuple[OrgSummary, ...]

    @property
    def over_budget_org(self) -> int | None:
        """Index (in ``ingest_keys``) of the org that runs over budget, if any."""
        return next((i for i, org in enumerate(self.orgs) if org.over_budget), None)


class _Event(NamedTuple):
    """A task run (``agent`` None) or a heartbeat, ``at_s`` after the phase's start."""

    at_s: float
    org: int
    agent: Agent | None


def run_demo(
    options: DemoOptions, progress: Callable[[int, int], None] | None = None
) -> DemoSummary:
    """Generates the demo's telemetry and sends it; returns when all was delivered.

    Args:
        options: What to generate and where to send it.
        progress: Called with (task runs produced, task runs planned) after every run.

    Returns:
        What was sent, as acknowledged by the receiver.

    Raises:
        ValueError: Invalid options.
        DemoError: The endpoint is unreachable, or the receiver refused part of the
            telemetry.
    """
    _check(options)
    check_reachable(options.endpoint)
    orgs = build_orgs(len(options.ingest_keys), options.agents)
    backfill_start_ns = time.time_ns() - round(options.backfill_s * 1e9)
    schedule = random.Random(f"{options.seed}:schedule")
    backfill = _backfill_events(schedule, orgs, backfill_start_ns, options.backfill_s)
    live = _live_events(schedule, orgs, options.duration_s, options.rate)
    total = sum(1 for e in (*backfill, *live) if e.agent is None)
    clock, prices = SimClock(), shipped_price_book()
    pipelines = _open(orgs, options, clock)
    gauges = random.Random(f"{options.seed}:gauges")
    emitter = Emitter(pipelines, clock, prices, gauges, _salt())
    player = _Player(emitter, orgs, options.seed, total, progress)
    interrupted, problems = False, []
    try:
        beat_s = _backfill_beat_interval(orgs, options.backfill_s)
        problems += player.backfill(backfill, backfill_start_ns, beat_s, pipelines)
        player.live(live, options.duration_s)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        problems += [problem for pipeline in pipelines for problem in pipeline.close()]
    if problems:
        raise DemoError("the receiver did not take everything: " + "; ".join(problems))
    return _summary(orgs, pipelines, emitter.counts, interrupted)


def _check(options: DemoOptions) -> None:
    if not options.endpoint.strip():
        raise ValueError("endpoint must not be empty")
    if not options.ingest_keys or not all(k.strip() for k in options.ingest_keys):
        raise ValueError("give at least one ingest key, none empty")
    if options.agents < 1:
        raise ValueError("agents must be at least 1")
    if options.duration_s < 0 or options.backfill_s < 0:
        raise ValueError("duration_s and backfill_s must not be negative")
    if options.duration_s > 0 and not (options.rate > 0 and math.isfinite(options.rate)):
        raise ValueError("rate must be a positive number")


def _open(orgs: tuple[Org, ...], options: DemoOptions, clock: SimClock) -> list[OrgPipeline]:
    """One pipeline per org; if one cannot be built, those built so far are shut down."""
    pipelines: list[OrgPipeline] = []
    try:
        for org, key in zip(orgs, options.ingest_keys, strict=True):
            exporters = otlp_exporters(options.endpoint, key)
            pipelines.append(OrgPipeline(org, exporters, clock, options.duration_s > 0))
    except BaseException:
        for pipeline in pipelines:
            pipeline.close()
        raise
    return pipelines


def _salt() -> str:
    """A fresh prefix for run ids, so that two demos never share a task run."""
    return secrets.token_hex(3)


class _Player:
    """Plays a schedule: plans each run when its turn comes, reports progress."""

    def __init__(
        self,
        emitter: Emitter,
        orgs: tuple[Org, ...],
        seed: int,
        total: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self._emitter, self._orgs, self._total, self._progress = emitter, orgs, total, progress
        self._rngs = [random.Random(f"{seed}:org:{org.index}") for org in orgs]
        self._numbers = [0] * len(orgs)
        self.done = 0

    def run(self, org_index: int, end_ns: int) -> None:
        """Plans and emits the org's next run, ending at ``end_ns``."""
        number = self._numbers[org_index] = self._numbers[org_index] + 1
        plan = plan_run(self._rngs[org_index], self._orgs[org_index], number)
        self._emitter.run(plan, end_ns)
        self.done += 1
        if self._progress is not None:
            self._progress(self.done, self._total)

    def backfill(
        self, events: list[_Event], start_ns: int, beat_s: float, pipelines: list[OrgPipeline]
    ) -> list[str]:
        """Past runs and heartbeats, flushing every ``BACKFILL_FLUSH_EVERY`` runs."""
        problems: list[str] = []
        for event in events:
            at_ns = start_ns + round(event.at_s * 1e9)
            if event.agent is not None:
                self._emitter.heartbeat(event.org, event.agent, at_ns, beat_s)
                continue
            self.run(event.org, at_ns)
            if self.done % BACKFILL_FLUSH_EVERY == 0 and not all(p.flush() for p in pipelines):
                problems.append("a flush timed out during the backfill")
        return problems

    def live(self, events: list[_Event], duration_s: float) -> None:
        """Runs and heartbeats in real time; a run is emitted when it ends."""
        start = time.monotonic()
        for event in events:
            delay = start + event.at_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if event.agent is None:
                self.run(event.org, time.time_ns())
            else:
                self._emitter.heartbeat(event.org, event.agent, None, HEARTBEAT_S)
        rest = start + duration_s - time.monotonic()
        if rest > 0:
            time.sleep(rest)


def _live_events(
    rng: random.Random, orgs: tuple[Org, ...], duration_s: float, rate: float
) -> list[_Event]:
    """Poisson arrivals at ``rate`` spread over the orgs, heartbeats every ``HEARTBEAT_S``."""
    events: list[_Event] = []
    if duration_s <= 0:
        return events
    at = rng.expovariate(rate)
    while at < duration_s:
        events.append(_Event(at, rng.randrange(len(orgs)), None))
        at += rng.expovariate(rate)
    for org in orgs:
        for slot, agent in enumerate(org.agents):
            first = (slot * 0.37 + org.index * 0.11) % 1.0  # everyone beats in the first second
            beats = _ticks(first, duration_s, HEARTBEAT_S)
            events += [_Event(first + k * HEARTBEAT_S, org.index, agent) for k in range(beats)]
    return sorted(events, key=_order)


def _backfill_events(
    rng: random.Random, orgs: tuple[Org, ...], start_ns: int, window_s: float
) -> list[_Event]:
    """Past runs on a weekly/daily curve and heartbeats, in time order."""
    events: list[_Event] = []
    if window_s <= 0:
        return events
    per_day = min(BACKFILL_RUNS_PER_DAY, MAX_BACKFILL_RUNS * DAY_S / (len(orgs) * window_s))
    interval = _backfill_beat_interval(orgs, window_s)
    peak_rate = per_day / DAY_S / _MEAN_ACTIVITY
    for org in orgs:
        at = rng.expovariate(peak_rate)
        while at < window_s:
            if rng.random() < _activity(start_ns / 1e9 + at):
                events.append(_Event(at, org.index, None))
            at += rng.expovariate(peak_rate)
        for agent in org.agents:
            first = rng.uniform(0.0, interval)
            beats = _ticks(first, window_s, interval)
            events += [_Event(first + k * interval, org.index, agent) for k in range(beats)]
    return sorted(events, key=_order)


def _backfill_beat_interval(orgs: tuple[Org, ...], window_s: float) -> float:
    """``BACKFILL_HEARTBEAT_S``, longer if needed to keep under ``MAX_BACKFILL_BEATS``."""
    n_agents = sum(len(org.agents) for org in orgs)
    return max(BACKFILL_HEARTBEAT_S, window_s * n_agents / MAX_BACKFILL_BEATS)


def _ticks(first: float, end: float, interval: float) -> int:
    """How many of ``first + k * interval`` (k = 0, 1, ...) fall before ``end``."""
    return math.ceil((end - first) / interval) if end > first else 0


def _order(event: _Event) -> tuple[float, int, str]:
    return event.at_s, event.org, event.agent.agent_id if event.agent else ""


def _activity(unix_s: float) -> float:
    """Relative load, 1 at its peak: business hours (UTC) on weekdays, quieter weekends."""
    moment = datetime.fromtimestamp(unix_s, UTC)
    hour = moment.hour + moment.minute / 60
    daily = 0.25 + 0.75 * max(0.0, math.sin(math.pi * (hour - 6.0) / 16.0)) ** 2
    return daily * (0.45 if moment.weekday() >= 5 else 1.0)


# The mean of _activity over a week (a Monday 00:00 UTC onwards), for the thinning rate.
_MEAN_ACTIVITY: Final = sum(_activity(345_600.0 + 600.0 * k) for k in range(1008)) / 1008


def _summary(
    orgs: tuple[Org, ...],
    pipelines: list[OrgPipeline],
    counts: list[OrgCounts],
    interrupted: bool,
) -> DemoSummary:
    per_org = tuple(
        OrgSummary(
            fleet_id=org.fleet_id,
            agent_ids=tuple(a.agent_id for a in org.agents),
            degraded_agents=tuple(a.agent_id for a in org.agents if a.misbehaving),
            over_budget=org.over_budget,
            task_runs=c.task_runs,
            failed_runs=c.failed_runs,
            spans=p.spans.exported,
            span_events=p.spans.extra,
            llm_calls=c.llm_calls,
            log_records=p.logs.exported,
            metric_points=p.metrics.exported,
            expected_cost_usd=c.cost_usd,
        )
        for org, p, c in zip(orgs, pipelines, counts, strict=True)
    )
    return DemoSummary(
        task_runs=sum(o.task_runs for o in per_org),
        spans=sum(o.spans for o in per_org),
        llm_calls=sum(o.llm_calls for o in per_org),
        log_records=sum(o.log_records for o in per_org),
        metric_points=sum(o.metric_points for o in per_org),
        expected_cost_usd=sum((o.expected_cost_usd for o in per_org), Decimal(0)),
        failed_runs=sum(o.failed_runs for o in per_org),
        span_events=sum(o.span_events for o in per_org),
        interrupted=interrupted,
        orgs=per_org,
    )

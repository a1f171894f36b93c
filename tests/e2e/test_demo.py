"""``aeos demo`` against a running ``aeos serve``: what the demo reports is what landed.

The demo exports through the real OpenTelemetry SDK exporters (gRPC and HTTP/protobuf)
and returns only after the receiver acknowledged everything, and the receiver
acknowledges only committed rows, so the database is checked right away.
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry import trace

from aeos._demo_plan import RunPlan, plan_run
from aeos._demo_world import build_orgs
from aeos.demo import DemoError, DemoOptions, DemoSummary, OrgSummary, run_demo
from storage.embedded import free_port
from tests.e2e.conftest import RunningService

pytestmark = pytest.mark.slow

BACKFILL_S = 2 * 3600.0
COST_TOLERANCE = Decimal("1e-9")
LLM_OPERATIONS = "('chat', 'embeddings')"


def _demo(service: RunningService, endpoint: str) -> tuple[DemoSummary, list[uuid.UUID]]:
    orgs = [service.new_org(), service.new_org()]
    calls: list[tuple[int, int]] = []
    options = DemoOptions(
        endpoint=endpoint,
        ingest_keys=[key for _, key in orgs],
        agents=3,
        rate=5.0,
        duration_s=3.0,
        backfill_s=BACKFILL_S,
        seed=7,
    )
    summary = run_demo(options, progress=lambda done, total: calls.append((done, total)))
    assert not summary.interrupted
    assert calls[-1] == (summary.task_runs, summary.task_runs)
    assert [done for done, _ in calls] == list(range(1, summary.task_runs + 1))
    return summary, [org_id for org_id, _ in orgs]


def _count(service: RunningService, sql: str, org: uuid.UUID, **params: Any) -> int:
    return int(service.scalar(sql, o=org, **params))


def _check_counts(service: RunningService, org: uuid.UUID, sent: OrgSummary) -> None:
    """Every span, task run, LLM call, event and metric point sent is stored, once."""
    assert sent.task_runs > 0
    assert _count(service, "SELECT count(*) FROM spans WHERE org_id = :o", org) == sent.spans
    assert _count(service, "SELECT count(*) FROM task_runs WHERE org_id = :o", org) == (
        sent.task_runs
    )
    failed = "SELECT count(*) FROM task_runs WHERE org_id = :o AND status = 'failed'"
    assert _count(service, failed, org) == sent.failed_runs
    llm = f"SELECT count(*) FROM spans WHERE org_id = :o AND gen_ai_operation IN {LLM_OPERATIONS}"
    assert _count(service, llm, org) == sent.llm_calls
    events = "SELECT count(*) FROM events WHERE org_id = :o"
    assert _count(service, events, org) == sent.log_records + sent.span_events
    points = "SELECT count(*) FROM metric_points WHERE org_id = :o"
    assert _count(service, points, org) == sent.metric_points


def _check_isolation(
    service: RunningService, org: uuid.UUID, sent: OrgSummary, other: uuid.UUID
) -> None:
    """The org's rows name only its own agents and fleet; the other org has none of them."""
    ids = list(sent.agent_ids)
    for table in ("spans", "events", "metric_points", "cost_line_items", "agents"):
        rows = service.query(f"SELECT DISTINCT agent_id FROM {table} WHERE org_id = :o", o=org)
        assert {row[0] for row in rows} <= set(ids), table
        leaked = f"SELECT count(*) FROM {table} WHERE org_id = :o AND agent_id = ANY(:ids)"
        assert _count(service, leaked, other, ids=ids) == 0, table
    fleets = service.query("SELECT DISTINCT fleet_id FROM spans WHERE org_id = :o", o=org)
    assert [row[0] for row in fleets] == [sent.fleet_id]


def _stored_cost(service: RunningService, org: uuid.UUID) -> Decimal:
    sql = "SELECT coalesce(sum(cost_usd), 0) FROM cost_line_items WHERE org_id = :o"
    return Decimal(service.scalar(sql, o=org))


def _check_costs(service: RunningService, org: uuid.UUID, sent: OrgSummary) -> Decimal:
    """The receiver charged what the demo expected, all of it under task runs."""
    stored = _stored_cost(service, org)
    assert abs(stored - sent.expected_cost_usd) <= COST_TOLERANCE, (stored, sent)
    orphans = "SELECT count(*) FROM cost_line_items WHERE org_id = :o AND task_run_id IS NULL"
    assert _count(service, orphans, org) == 0
    runs = "SELECT coalesce(sum(cost_usd), 0) FROM task_runs WHERE org_id = :o"
    assert abs(Decimal(service.scalar(runs, o=org)) - stored) <= COST_TOLERANCE
    return stored


def _check_fleet(service: RunningService, org: uuid.UUID, sent: OrgSummary) -> None:
    """Heartbeats set agent status (misbehaving ones degraded); DAMN gauges arrived."""
    degraded = service.query(
        "SELECT agent_id FROM agents WHERE org_id = :o AND status = 'degraded'", o=org
    )
    assert sorted(row[0] for row in degraded) == sorted(sent.degraded_agents)
    beats = "SELECT count(DISTINCT agent_id) FROM events WHERE org_id = :o AND event_type = :e"
    assert _count(service, beats, org, e="damn.agent.heartbeat") == len(sent.agent_ids)
    depth = "SELECT count(*) FROM metric_points WHERE org_id = :o AND metric = :m"
    assert _count(service, depth, org, m="damn.queue.depth") > 0
    assert _count(service, depth, org, m="uce.cache.requests") > 0


def _check_backfill(service: RunningService, org: uuid.UUID) -> None:
    """Backfilled spans lie in the past window (runs may start minutes before it)."""
    old = "SELECT count(*) FROM spans WHERE org_id = :o AND start_time < now() - interval '1 hour'"
    assert _count(service, old, org) > 0
    span = service.query(
        "SELECT min(start_time) > now() - interval '2 hours 30 minutes', max(end_time) <= now() "
        "FROM spans WHERE org_id = :o",
        o=org,
    )[0]
    assert tuple(span) == (True, True)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_demo_stores_exactly_what_it_reports(service: RunningService, transport: str) -> None:
    endpoint = service.grpc_endpoint if transport == "grpc" else service.http_endpoint
    summary, orgs = _demo(service, endpoint)
    assert summary.spans == sum(o.spans for o in summary.orgs)
    assert summary.over_budget_org == 1
    costs = []
    for i, (org, sent) in enumerate(zip(orgs, summary.orgs, strict=True)):
        _check_counts(service, org, sent)
        _check_isolation(service, org, sent, orgs[1 - i])
        costs.append(_check_costs(service, org, sent))
        _check_fleet(service, org, sent)
        _check_backfill(service, org)
    assert abs(sum(costs) - summary.expected_cost_usd) <= COST_TOLERANCE
    assert costs[1] >= 5 * costs[0] > 0
    assert sum(len(o.degraded_agents) for o in summary.orgs) >= 1
    # Providers are per org and agent, used directly: nothing was installed globally.
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def test_interrupt_flushes_what_was_produced(service: RunningService) -> None:
    """A KeyboardInterrupt (here from the progress callback) ends the demo cleanly."""
    org, key = service.new_org()

    def progress(done: int, total: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    options = DemoOptions(service.http_endpoint, [key], agents=4, duration_s=60, backfill_s=86_400)
    summary = run_demo(options, progress)
    assert summary.interrupted
    assert summary.task_runs == 10
    assert _count(service, "SELECT count(*) FROM task_runs WHERE org_id = :o", org) == 10
    assert _count(service, "SELECT count(*) FROM spans WHERE org_id = :o", org) == summary.spans
    assert abs(_stored_cost(service, org) - summary.expected_cost_usd) <= COST_TOLERANCE


def test_refused_telemetry_is_an_error(service: RunningService) -> None:
    """Nothing is lost silently: what the receiver refuses makes the demo fail."""
    options = DemoOptions(service.grpc_endpoint, ["aeos_ik_unknown"], duration_s=0, backfill_s=900)
    with pytest.raises(DemoError, match="log records were not accepted"):
        run_demo(options)
    nobody = DemoOptions(f"http://127.0.0.1:{free_port()}", ["aeos_ik_unknown"], duration_s=1)
    with pytest.raises(DemoError, match="cannot reach"):
        run_demo(nobody)


def test_same_seed_same_plans() -> None:
    """The content is a function of the seed (ids aside, which are fresh per demo)."""
    org = build_orgs(2, 6)[1]

    def plans(seed: str) -> list[RunPlan]:
        rng = random.Random(seed)
        return [plan_run(rng, org, n) for n in range(50)]

    assert plans("3:org:1") == plans("3:org:1")
    assert plans("3:org:1") != plans("4:org:1")

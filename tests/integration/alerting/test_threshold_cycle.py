"""Threshold rules through whole cycles on a controlled clock, on both engines: data
written by the ingest writer, read from the rollups as the tenant, states, evaluations,
grouped inbox notifications."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from alerting.cycle import CycleSettings, run_cycle
from storage import Batch
from storage.database import Database
from tests.integration.alerting._world import add_rule, make_org, rows, span, write

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

pytestmark = pytest.mark.usefixtures("pg_server")


def _traffic(org: uuid.UUID, start: datetime, minutes: int, *, errors: dict[str, int]) -> Batch:
    """10 spans a minute for agents a and b; ``errors[agent]`` of them failing."""
    b = Batch(org)
    for m in range(minutes):
        for agent in ("a", "b"):
            for i in range(10):
                b.spans.append(span(start + m * MIN + timedelta(seconds=i), agent=agent,
                                    error=i < errors.get(agent, 0)))  # fmt: skip
    return b


def _states(engine: Engine, rule_id: uuid.UUID) -> dict[str, str]:
    found = rows(engine, "SELECT labels, state FROM alert_states WHERE rule_id = :r", r=rule_id)
    return {r["labels"].get("agent_id", ""): r["state"] for r in found}


def test_error_rate_per_agent_walks_pending_alerting_resolved(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    other = make_org(database, "other")
    # agent b fails 50 % from T0 for 4 minutes; a is healthy. The other org fails everywhere.
    write(database, [
        _traffic(org, T0 - 10 * MIN, 10, errors={}),
        _traffic(org, T0, 4, errors={"b": 5}),
        _traffic(org, T0 + 4 * MIN, 10, errors={}),
        _traffic(other, T0 - 10 * MIN, 24, errors={"a": 10, "b": 10}),
    ])  # fmt: skip
    rule = add_rule(
        engine, org, name="error rate", type="threshold", for_s=120, interval_s=60,
        params={"measure": "error_rate", "group_by": ["agent_id"], "window_s": 60,
                "op": "gt", "value": 0.2},
    )  # fmt: skip
    timeline = {}
    for m in range(0, 9):
        now = T0 + m * MIN + timedelta(seconds=5)
        run_cycle(engine, now)
        timeline[m] = _states(engine, rule)
    # The window is the last complete minute: the breach is seen from T0+1m to T0+4m.
    assert timeline[0] == {"a": "normal", "b": "normal"}
    assert timeline[1]["b"] == "pending"
    assert timeline[2]["b"] == "pending"
    assert timeline[3]["b"] == "alerting"  # breached for 2 minutes (the for period)
    assert timeline[4]["b"] == "alerting"
    assert timeline[5]["b"] == "normal"
    assert all(t["a"] == "normal" for t in timeline.values())
    evaluations = rows(engine, "SELECT time, state FROM alert_evaluations WHERE rule_id = :r "
                       "ORDER BY time", r=rule)  # fmt: skip
    assert [e["state"] for e in evaluations] == [
        "normal",
        "pending",
        "pending",
        "alerting",
        "alerting",
        "normal",
        "normal",
        "normal",
        "normal",
    ]
    # group_wait 30 s: the firing notification goes out at the first cycle 30 s after the
    # change; the resolution after group_interval (5 min after that notification).
    inbox = rows(engine, "SELECT type, title, created_at, details FROM notifications "
                 "WHERE org_id = :o ORDER BY created_at", o=org)  # fmt: skip
    assert [n["type"] for n in inbox] == ["alert.firing"]
    assert inbox[0]["created_at"] == T0 + 4 * MIN + timedelta(seconds=5)
    assert inbox[0]["details"]["alerts"][0]["labels"]["agent_id"] == "b"
    run_cycle(engine, T0 + 9 * MIN + timedelta(seconds=5))
    inbox = rows(
        engine, "SELECT type FROM notifications WHERE org_id = :o ORDER BY created_at", o=org
    )
    assert [n["type"] for n in inbox] == ["alert.firing", "alert.resolved"]


def test_each_rule_is_evaluated_once_per_tick(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    ids = [
        add_rule(engine, org, name=f"r{i}", type="threshold",
                 params={"measure": "span_count", "value": 1e9})
        for i in range(7)
    ]  # fmt: skip
    summary = run_cycle(engine, T0, CycleSettings(batch_size=3))
    assert summary.rules == 7
    assert summary.batches == 3
    assert run_cycle(engine, T0 + timedelta(seconds=30)).rules == 0  # same tick
    assert run_cycle(engine, T0 + MIN).rules == 7
    counts = rows(engine, "SELECT rule_id, count(*) AS n FROM alert_evaluations GROUP BY 1")
    assert {r["rule_id"]: r["n"] for r in counts} == {i: 2 for i in ids}
    # No spans at all: NoData, the rule's default choice.
    assert {r["state"] for r in rows(engine, "SELECT state FROM alert_states")} == {"no_data"}


def test_latency_measures_from_the_histograms(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    slow = Batch(org)
    for i in range(100):  # 94 fast spans and 6 slow ones in the minute before T0
        slow.spans.append(
            span(T0 - MIN + timedelta(milliseconds=i * 500), ms=500.0 if i < 6 else 10.0)
        )
    write(database, [slow])
    p95 = add_rule(engine, org, name="p95", type="threshold",
                   params={"measure": "p95_latency_ms", "window_s": 60, "value": 100})  # fmt: skip
    p99 = add_rule(engine, org, name="p99", type="threshold",
                   params={"measure": "duration_p99_ms", "window_s": 60, "value": 100})  # fmt: skip
    avg = add_rule(engine, org, name="avg", type="threshold",
                   params={"measure": "duration_avg_ms", "window_s": 60, "value": 100})  # fmt: skip
    run_cycle(engine, T0)
    values = {r["rule_id"]: (r["state"], r["value"]) for r in rows(
        engine, "SELECT rule_id, state, value FROM alert_evaluations")}  # fmt: skip
    assert values[p95][0] == "alerting"
    assert abs(values[p95][1] - 500.0) <= 5.0  # histograms: within 1 %
    assert values[p99][0] == "alerting"
    assert values[avg] == ("normal", (6 * 500.0 + 94 * 10.0) / 100)


def test_platform_rule_reads_all_orgs_and_org_rules_only_their_own(database: Database) -> None:
    engine = database.app_engine()
    orgs = [make_org(database, f"org-{i}") for i in range(3)]
    write(database, [_traffic(org, T0 - 5 * MIN, 5, errors={"a": 10}) for org in orgs])
    staff_org = make_org(database, "alias")
    platform = add_rule(engine, staff_org, name="platform spans", type="threshold", scope="platform",
                        params={"measure": "span_count", "window_s": 300, "value": 200})  # fmt: skip
    own = add_rule(engine, orgs[0], name="own spans", type="threshold",
                   params={"measure": "span_count", "window_s": 300, "value": 200})  # fmt: skip
    run_cycle(engine, T0)
    values = {r["rule_id"]: (r["state"], r["value"]) for r in rows(
        engine, "SELECT rule_id, state, value FROM alert_evaluations")}  # fmt: skip
    assert values[platform] == ("alerting", 3 * 5 * 20.0)  # 3 orgs x 5 min x 20 spans
    assert values[own] == ("normal", 5 * 20.0)


def test_metric_measure_per_agent(database: Database) -> None:
    from storage import MetricPointRow

    engine = database.app_engine()
    org = make_org(database, "acme")
    b = Batch(org)
    for m in range(3):
        for agent, depth in (("a", 5.0), ("b", 50.0)):
            t = T0 - (m + 1) * MIN
            b.metric_points.append(MetricPointRow(
                metric="damn.queue.depth", series_id=agent.encode() * 16, time_ns=int(t.timestamp() * 1e9),
                start_ns=None, kind="gauge", temporality=0, is_monotonic=False, unit="1",
                subsystem="DAMN", service_name=None, agent_id=agent, attributes={},
                resource_attributes={}, value=depth + m,
            ))  # fmt: skip
    write(database, [b])
    rule = add_rule(engine, org, name="queue deep", type="threshold",
                    params={"measure": "metric_max", "metric": "damn.queue.depth", "window_s": 300,
                            "group_by": ["agent_id"], "value": 20})  # fmt: skip
    run_cycle(engine, T0)
    assert _states(engine, rule) == {"a": "normal", "b": "alerting"}
    [value] = rows(engine, "SELECT last_value FROM alert_states WHERE labels->>'agent_id' = 'b'")
    assert value == {"last_value": 52.0}

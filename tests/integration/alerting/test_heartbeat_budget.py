"""Heartbeat and budget rules on a controlled clock, on both engines; NoData, Error and
vanished series through the real store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from alerting.cycle import run_cycle
from storage import Batch
from storage.database import Database
from tests.integration.alerting._world import (
    add_rule,
    agent,
    cost,
    heartbeat,
    make_org,
    rows,
    write,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

pytestmark = pytest.mark.usefixtures("pg_server")


def _states(engine: Engine, rule_id: uuid.UUID, key: str) -> dict[str, str]:
    found = rows(engine, "SELECT labels, state FROM alert_states WHERE rule_id = :r", r=rule_id)
    return {r["labels"].get(key, ""): r["state"] for r in found}


def _heartbeats(org: uuid.UUID, agent_id: str, start: datetime, minutes: int) -> Batch:
    b = Batch(org, agents=[agent(agent_id, "fleet-1", start)])
    b.events = [heartbeat(start + m * MIN, agent_id) for m in range(minutes)]
    return b


def test_agent_silent_fires_and_resolves_when_it_is_back(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    # a beats throughout; b stops at T0 and is back at T0+10m.
    write(database, [
        _heartbeats(org, "a", T0 - 30 * MIN, 50),
        _heartbeats(org, "b", T0 - 30 * MIN, 30),
        _heartbeats(org, "b", T0 + 10 * MIN, 10),
    ])  # fmt: skip
    rule = add_rule(engine, org, name="silent agents", type="heartbeat",
                    params={"target": "agent", "silent_for_s": 300})  # fmt: skip
    seen = {}
    for m in (0, 4, 5, 6, 11):
        run_cycle(engine, T0 + m * MIN)
        seen[m] = _states(engine, rule, "agent_id")
    assert seen[0] == {"a": "normal", "b": "normal"}
    assert seen[4]["b"] == "normal"  # last beat in minute T0-1m: silent 4 minutes
    assert seen[5]["b"] == "alerting"
    assert seen[6]["b"] == "alerting"
    assert seen[11] == {"a": "normal", "b": "normal"}
    value = rows(engine, "SELECT value FROM alert_evaluations WHERE rule_id = :r "
                 "AND time = :t", r=rule, t=T0 + 6 * MIN)  # fmt: skip
    assert value == [{"value": 360.0}]


def test_fleet_offline_share(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    write(database, [_heartbeats(org, f"agent-{i}", T0 - 20 * MIN, 20 if i < 2 else 5)
                     for i in range(4)])  # fmt: skip
    rule = add_rule(engine, org, name="fleet down", type="heartbeat",
                    params={"target": "fleet_offline", "silent_for_s": 300, "offline_pct": 40})  # fmt: skip
    run_cycle(engine, T0)
    assert _states(engine, rule, "fleet_id") == {"fleet-1": "alerting"}
    value = rows(engine, "SELECT value FROM alert_evaluations WHERE rule_id = :r", r=rule)
    assert value == [{"value": 50.0}]


def test_budget_ladder_once_per_step_per_period_and_forecast(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    month = datetime(2026, 11, 1, tzinfo=UTC)
    rule = add_rule(engine, org, name="monthly budget", type="budget", interval_s=3600,
                    params={"period": "month", "amount_usd": 100.0})  # fmt: skip

    def spend(t: datetime, usd: float) -> None:
        s, c = cost(t, usd)
        write(database, [Batch(org, spans=[s], llm_calls=[c])])

    def types() -> list[str]:
        found = rows(engine, "SELECT type, details FROM notifications ORDER BY created_at, title")
        return [f"{n['type']}:{n['details'].get('step')}" for n in found]

    spend(month + timedelta(days=1), 10.0)
    run_cycle(engine, month + timedelta(days=4))  # $10 in 4 days: forecast $75
    assert types() == []
    spend(month + timedelta(days=4, hours=1), 45.0)
    run_cycle(engine, month + timedelta(days=5))  # $55: 50 %; forecast $330 > $100
    assert types() == ["budget.threshold:50", "budget.forecast:forecast"]
    run_cycle(engine, month + timedelta(days=6))  # nothing new
    spend(month + timedelta(days=6, hours=1), 50.0)
    run_cycle(engine, month + timedelta(days=7))  # $105: 80 % and 100 % together
    assert types()[2:] == ["budget.threshold:100", "budget.threshold:80"]
    run_cycle(engine, month + timedelta(days=8))
    assert len(types()) == 4
    # December: a new period, the ladder starts again.
    december = datetime(2026, 12, 1, tzinfo=UTC)
    spend(december + timedelta(hours=1), 60.0)
    run_cycle(engine, december + timedelta(days=1))
    assert types()[4:] == ["budget.threshold:50", "budget.forecast:forecast"]
    states = rows(engine, "SELECT state, last_value FROM alert_states WHERE rule_id = :r", r=rule)
    assert states == [{"state": "normal", "last_value": 60.0}]


def test_error_and_vanished_series(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    write(
        database,
        [_heartbeats(org, "a", T0 - 30 * MIN, 20), _heartbeats(org, "b", T0 - 30 * MIN, 20)],
    )
    rule = add_rule(engine, org, name="silent", type="heartbeat", error_state="error",
                    params={"target": "agent", "silent_for_s": 300})  # fmt: skip
    run_cycle(engine, T0)
    assert _states(engine, rule, "agent_id") == {"a": "alerting", "b": "alerting"}
    # A stored rule whose params no longer parse (edited outside the API): Error.
    with database.admin_engine().begin() as conn:
        conn.execute(
            text("UPDATE alert_rules SET params = '{\"target\": 5}' WHERE id = :r"), {"r": rule}
        )
    run_cycle(engine, T0 + MIN)
    assert _states(engine, rule, "agent_id") == {"a": "error", "b": "error"}
    firing = rows(engine, "SELECT count(*) AS n FROM alert_states WHERE is_firing")
    assert firing == [{"n": 2}]
    # Fixed, and agent b removed from the registry: its series vanishes.
    with database.admin_engine().begin() as conn:
        conn.execute(text("UPDATE alert_rules SET params = :p WHERE id = :r"),
                     {"r": rule, "p": '{"target": "agent", "silent_for_s": 300}'})  # fmt: skip
        conn.execute(text("DELETE FROM agents WHERE agent_id = 'b'"))
    run_cycle(engine, T0 + 2 * MIN)
    assert _states(engine, rule, "agent_id") == {"a": "alerting", "b": "error"}
    run_cycle(engine, T0 + 3 * MIN)
    assert _states(engine, rule, "agent_id") == {"a": "alerting", "b": "normal"}
    reason = rows(engine, "SELECT reason FROM alert_states WHERE labels->>'agent_id' = 'b'")
    assert reason == [{"reason": "MissingSeries"}]
    history = rows(
        engine, "SELECT state FROM alert_evaluations WHERE rule_id = :r ORDER BY time", r=rule
    )
    assert [h["state"] for h in history] == ["alerting", "error", "alerting", "alerting"]

"""Silences and grouping through the store: a silenced instance is not notified until
the silence ends; a flapping rule is notified at most once per group_interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerting.cycle import run_cycle
from storage import DbRole, Scope, scoped_transaction
from storage.alerts.rules import add_silence
from storage.database import Database
from tests.integration.alerting._world import add_rule, make_org, rows

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

pytestmark = pytest.mark.usefixtures("pg_server")


def _types(database: Database) -> list[str]:
    found = rows(database.app_engine(), "SELECT type FROM notifications ORDER BY created_at")
    return [n["type"] for n in found]


def test_silence_mutes_until_it_ends(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    rule = add_rule(engine, org, name="always", type="threshold", no_data_state="alerting",
                    labels={"team": "ops"}, params={"measure": "span_count", "value": 1})  # fmt: skip
    with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
        add_silence(conn, org, rule_id=None, matchers={"team": "ops"}, starts_at=T0,
                    ends_at=T0 + 10 * MIN, comment="maintenance")  # fmt: skip
    for m in range(10):
        run_cycle(engine, T0 + m * MIN)
    assert _types(database) == []  # firing all along, but silenced
    state = rows(engine, "SELECT state FROM alert_states WHERE rule_id = :r", r=rule)
    assert state == [{"state": "alerting"}]
    for m in range(10, 16):  # the silence is over: the next group re-check notifies
        run_cycle(engine, T0 + m * MIN)
    assert _types(database) == ["alert.firing"]


def test_matchers_must_all_match(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    add_rule(engine, org, name="always", type="threshold", no_data_state="alerting",
             labels={"team": "ops"}, params={"measure": "span_count", "value": 1})  # fmt: skip
    with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
        add_silence(conn, org, rule_id=None, matchers={"team": "ops", "env": "staging"},
                    starts_at=T0, ends_at=T0 + 60 * MIN)  # fmt: skip
    run_cycle(engine, T0)
    run_cycle(engine, T0 + MIN)
    assert _types(database) == ["alert.firing"]


def test_flapping_rule_is_grouped(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    rule = add_rule(engine, org, name="flappy", type="threshold", no_data_state="alerting",
                    params={"measure": "span_count", "value": 1})  # fmt: skip
    run_cycle(engine, T0)
    run_cycle(engine, T0 + MIN)  # group_wait over: firing notified
    flip = "UPDATE alert_rules SET no_data_state = :s, next_eval_at = NULL WHERE id = :r"
    for m in range(2, 12):  # alternate Normal / Alerting every minute for 10 minutes
        with database.admin_engine().begin() as conn:
            from sqlalchemy import text

            conn.execute(text(flip), {"s": "normal" if m % 2 == 0 else "alerting", "r": rule})
        run_cycle(engine, T0 + m * MIN)
    transitions = rows(
        engine, "SELECT count(*) AS n FROM alert_evaluations WHERE rule_id = :r", r=rule
    )
    assert transitions == [{"n": 12}]
    # 10 flips in 10 minutes, but at most one notification per group_interval (5 min).
    assert len(_types(database)) <= 3
    assert _types(database)[0] == "alert.firing"

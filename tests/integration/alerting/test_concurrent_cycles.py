"""Two service processes running evaluation cycles at once: each rule is evaluated once
per tick, and no notification or delivery is created twice."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from alerting.cycle import CycleSettings, run_cycle
from storage.database import Database
from storage.schema import notification_endpoints
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction
from tests.conftest import TEST_APP_PASSWORD
from tests.integration.alerting._world import add_rule, make_org, rows

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("pg_server")


def _process(url: str, ticks: list[datetime], barrier: Any, out: Any) -> None:
    db = Database(make_url(url), TEST_APP_PASSWORD)
    engine = db.app_engine()
    done = 0
    for now in ticks:
        barrier.wait()
        done += run_cycle(engine, now, CycleSettings(batch_size=4)).rules
    out.put(done)
    db.close()


def test_two_processes_share_the_rules(database: Database) -> None:
    engine = database.app_engine()
    orgs = [make_org(database, f"org-{i}") for i in range(3)]
    rules = []
    for org in orgs:
        with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
            conn.execute(insert(notification_endpoints).values(
                org_id=org, kind="webhook", url="http://127.0.0.1:9/hook", secret="whsec_AAAA"))  # fmt: skip
        # No spans anywhere, and NoData means Alerting: every rule fires at the first tick.
        rules += [
            add_rule(engine, org, name=f"quiet {i}", type="threshold", no_data_state="alerting",
                     params={"measure": "span_count", "op": "lt", "value": 1})
            for i in range(12)
        ]  # fmt: skip
    ticks = [T0, T0 + timedelta(minutes=1)]
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    url = database.admin_url.render_as_string(hide_password=False)
    procs = [ctx.Process(target=_process, args=(url, ticks, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    done = [out.get(timeout=5) for _ in procs]
    assert sum(done) == 2 * len(rules)  # every rule once per tick, between them
    per_rule = rows(engine, "SELECT rule_id, count(*) AS n FROM alert_evaluations GROUP BY 1")
    assert {r["rule_id"]: r["n"] for r in per_rule} == {r: 2 for r in rules}
    # The groups flush at the second tick (after group_wait): one notification per rule,
    # one delivery per notification and endpoint, whoever flushed them.
    notes = rows(engine, "SELECT rule_id, type, count(*) AS n FROM notifications GROUP BY 1, 2")
    assert {(r["rule_id"], r["type"], r["n"]) for r in notes} == {
        (r, "alert.firing", 1) for r in rules
    }
    deliveries = rows(engine, "SELECT count(*) AS n, count(DISTINCT notification_id) AS d, "
                      "count(DISTINCT webhook_id) AS w FROM webhook_deliveries")  # fmt: skip
    assert deliveries == [{"n": len(rules), "d": len(rules), "w": len(rules)}]

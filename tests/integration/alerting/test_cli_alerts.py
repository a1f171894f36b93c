"""``aeos alerts list`` and ``aeos alerts eval --now`` against a real database."""

from __future__ import annotations

import json

import pytest

from storage.database import Database
from storage.migrate import StorageEngine
from tests.integration.alerting._world import add_rule, make_org, rows
from tests.integration.test_cli import _url, aeos


@pytest.fixture(params=[StorageEngine.POSTGRES])
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    kind: StorageEngine = request.param
    return kind


def test_eval_then_list(database: Database) -> None:
    engine = database.app_engine()
    org = make_org(database, "acme")
    rule = add_rule(engine, org, name="always", type="threshold", no_data_state="alerting",
                    params={"measure": "span_count", "value": 1})  # fmt: skip
    result = aeos("alerts", "eval", "--now", "2026-11-20T12:00:00", url=_url(database))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["evaluation"]["rules"] == 1
    assert out["evaluation"]["by_state"] == {"alerting": 1}
    [e] = rows(engine, "SELECT time FROM alert_evaluations WHERE rule_id = :r", r=rule)
    assert e["time"].isoformat() == "2026-11-20T12:00:00+00:00"
    listed = aeos("alerts", "list", "--json", url=_url(database))
    assert listed.returncode == 0, listed.stderr
    [r] = json.loads(listed.stdout)
    assert (r["org"], r["name"], r["state"], r["firing"]) == ("acme", "always", "alerting", 1)
    table = aeos("alerts", "list", url=_url(database))
    assert "always" in table.stdout
    assert "firing 1/1" in table.stdout
    bad = aeos("alerts", "eval", "--now", "yesterday", url=_url(database))
    assert bad.returncode == 1
    assert "--now" in bad.stderr

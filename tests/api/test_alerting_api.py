"""The alerting routes over HTTP: who may write, validation naming the field, secrets
shown once, the inbox, history and incidents fed by a real evaluation cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerting.cycle import run_cycle
from alerting.deliver import run_deliveries
from alerting.settings import AlertingSettings
from query_api.errors import PROBLEM_BASE
from storage.migrate import StorageEngine
from tests.api.conftest import RunningApi
from tests.integration.alerting._receiver import Receiver

THRESHOLD: dict[str, Any] = {
    "name": "always firing",
    "type": "threshold",
    "no_data_state": "alerting",
    "severity": "critical",
    "params": {"measure": "span_count", "value": 1},
}


@pytest.fixture(params=[StorageEngine.POSTGRES])
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    """The routes are engine-agnostic (the engine tests cover the readers)."""
    kind: StorageEngine = request.param
    return kind


def _post(api: RunningApi, path: str, key: str, body: Any) -> Any:
    return api.client.post(path, headers=api.headers(key), json=body)


def test_rules_crud_and_who_may_write(api: RunningApi) -> None:
    org = api.make_org()
    created = _post(api, "/v1/alert-rules", org.admin_key, THRESHOLD)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["state"] is None
    assert rule["params"] == {"measure": "span_count", "value": 1}
    assert _post(api, "/v1/alert-rules", org.member_key, THRESHOLD).status_code == 403
    listed = api.get("/v1/alert-rules", org.member_key).json()["data"]
    assert [r["id"] for r in listed] == [rule["id"]]
    other = api.make_org()
    assert api.get(f"/v1/alert-rules/{rule['id']}", other.admin_key).status_code == 404
    staff = f"/v1/staff/orgs/{org.org_id}/alert-rules"
    assert len(api.get(staff, api.staff_key("alias_support")).json()["data"]) == 1
    assert _post(api, staff, api.staff_key("alias_support"), THRESHOLD).status_code == 403
    assert _post(api, staff, api.staff_key("alias_admin"), THRESHOLD).status_code == 201
    changed = api.client.put(f"/v1/alert-rules/{rule['id']}", headers=api.headers(org.admin_key),
                             json={**THRESHOLD, "name": "renamed", "for_s": 60})  # fmt: skip
    assert changed.json()["name"] == "renamed"
    assert changed.json()["for_s"] == 60
    gone = api.client.delete(f"/v1/alert-rules/{rule['id']}", headers=api.headers(org.admin_key))
    assert gone.status_code == 204
    assert api.get(f"/v1/alert-rules/{rule['id']}", org.admin_key).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"params": {"measure": "error_rate", "value": 0.1, "window_s": 5}}, "params.window_s"),
        ({"params": {"measure": "nope", "value": 1}}, "params.measure"),
        ({"params": {"measure": "span_count"}}, "params.value"),
        ({"for_s": -1}, "for_s"),
        ({"type": "budget", "params": {"amount_usd": 0}}, "params.amount_usd"),
        ({"type": "heartbeat", "params": {"target": "metric"}}, "params"),
        ({"scope": "platform"}, "scope"),
    ],
)
def test_validation_errors_name_the_field(
    api: RunningApi, change: dict[str, Any], field: str
) -> None:
    org = api.make_org()
    response = _post(api, "/v1/alert-rules", org.admin_key, {**THRESHOLD, **change})
    if field == "scope":  # a platform rule needs alias_admin
        assert response.status_code == 403
        return
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "validation"
    assert field in [e["param"] for e in body["errors"]], body


def test_endpoints_secret_shown_once_and_test_delivery(api: RunningApi) -> None:
    org = api.make_org()
    receiver = Receiver().start()
    try:
        made = _post(api, "/v1/notification-endpoints", org.admin_key,
                     {"kind": "webhook", "name": "ops", "url": receiver.url})  # fmt: skip
        assert made.status_code == 201, made.text
        endpoint = made.json()
        assert endpoint["secret"].startswith("whsec_")
        listed = api.get("/v1/notification-endpoints", org.member_key).json()
        assert "secret" not in listed[0]
        bad = _post(api, "/v1/notification-endpoints", org.admin_key, {"kind": "email"})
        assert bad.status_code == 422
        assert "email is required" in bad.json()["detail"]
        test = _post(api, f"/v1/notification-endpoints/{endpoint['id']}/test", org.admin_key, None)
        assert test.status_code == 202
        settings = AlertingSettings(allow_private_targets=True)
        assert run_deliveries(api.db.app_engine(), None, settings).delivered == 1
        [got] = receiver.received
        assert got.headers["webhook-id"] == test.json()["webhook_id"]
        rotated = _post(api, f"/v1/notification-endpoints/{endpoint['id']}/rotate-secret",
                        org.admin_key, None)  # fmt: skip
        assert rotated.json()["secret"] != endpoint["secret"]
    finally:
        receiver.stop()


def test_inbox_history_and_incidents_after_a_cycle(api: RunningApi) -> None:
    org = api.make_org()
    rule = _post(api, "/v1/alert-rules", org.admin_key, THRESHOLD).json()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    engine = api.db.app_engine()
    run_cycle(engine, now - timedelta(minutes=1))
    run_cycle(engine, now)
    inbox = api.get("/v1/notifications", org.member_key).json()
    assert inbox["unread_count"] == 1
    [note] = inbox["data"]
    assert note["type"] == "alert.firing"
    assert api.get("/v1/notifications?type=budget.threshold", org.member_key).json()["data"] == []
    assert api.get("/v1/notifications?severity=critical", org.member_key).json()["data"] != []
    support = api.staff_key("alias_support")
    staff_path = f"/v1/staff/orgs/{org.org_id}/notifications/read-all"
    assert _post(api, staff_path, support, None).status_code == 403
    marked = _post(api, f"/v1/notifications/{note['id']}/read", org.member_key, None)
    assert marked.json() == {"marked": 1}
    assert api.get("/v1/notifications?unread=true", org.member_key).json()["unread_count"] == 0
    assert _post(api, "/v1/notifications/read-all", org.member_key, None).json() == {"marked": 0}
    history = api.get(f"/v1/alert-rules/{rule['id']}/history", org.member_key,
                      params={"start": (now - timedelta(hours=1)).isoformat()}).json()  # fmt: skip
    assert [h["state"] for h in history["data"]] == ["alerting", "alerting"]
    assert history["instances"][0]["is_firing"] is True
    assert api.get("/v1/alert-rules", org.member_key).json()["data"][0]["firing"] == 1
    incidents = api.get("/v1/incidents", org.member_key).json()
    assert incidents["firing"] == 1
    assert incidents["data"][0]["rule_name"] == "always firing"
    assert api.get("/v1/staff/incidents", support).json()["firing"] == 1
    assert api.get("/v1/staff/incidents", org.admin_key).status_code == 403
    other = api.make_org()
    assert api.get("/v1/incidents", other.member_key).json() == {"data": [], "firing": 0}


def test_openapi_has_an_example_per_endpoint_kind(api: RunningApi) -> None:
    doc = api.client.get("/openapi.json").json()
    body = doc["paths"]["/v1/notification-endpoints"]["post"]["requestBody"]["content"]
    examples = body["application/json"]["examples"]
    kinds = {e["value"]["kind"] for e in examples.values()}
    assert kinds == {"webhook", "slack", "email", "alertmanager"}

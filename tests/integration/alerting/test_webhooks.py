"""Webhook delivery against a real HTTP server on 127.0.0.1: Standard Webhooks signatures
verified with the reference library, retries on the schedule, Retry-After, 410 disables,
a receiver that is down gets everything once it is back, secret rotation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook

from alerting.cycle import run_cycle
from alerting.deliver import RETRY_SCHEDULE, run_deliveries
from alerting.settings import AlertingSettings
from storage.alerts.rules import create_endpoint, queue_test_delivery, rotate_secret
from storage.alerts.spec import EndpointSpec
from storage.database import Database
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction
from tests.integration.alerting._receiver import Receiver
from tests.integration.alerting._world import add_rule, make_org, rows

pytestmark = pytest.mark.usefixtures("pg_server")
SETTINGS = AlertingSettings(allow_private_targets=True, base_url="https://aeos.example")


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _endpoint(engine: Engine, org: uuid.UUID, url: str, **kw: object) -> tuple[uuid.UUID, str]:
    with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
        endpoint_id, secret = create_endpoint(
            conn, org, EndpointSpec.model_validate({"kind": "webhook", "url": url, **kw})
        )
    assert secret is not None
    return endpoint_id, secret


def _firing_rules(engine: Engine, org: uuid.UUID, n: int) -> None:
    for i in range(n):
        add_rule(engine, org, name=f"always {i}", type="threshold", no_data_state="alerting",
                 params={"measure": "span_count", "value": 1})  # fmt: skip


def test_signed_event_verifies_with_the_reference_library(
    database: Database, receiver: Receiver
) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    _, secret = _endpoint(engine, org, receiver.url)
    _firing_rules(engine, org, 1)
    run_cycle(engine, NOW)
    run_cycle(engine, NOW + timedelta(minutes=1))  # after group_wait: one notification
    summary = run_deliveries(engine, NOW + timedelta(minutes=1), SETTINGS)
    assert summary.delivered == 1
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "alert.firing"
    assert payload["data"]["alerts"][0]["labels"]["alertname"] == "always 0"
    assert payload["data"]["url"].startswith("https://aeos.example/alerts/")
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(got.body, got.headers)
    [d] = rows(engine, "SELECT status, attempts, response_code FROM webhook_deliveries")
    assert d == {"status": "delivered", "attempts": 1, "response_code": 200}


def test_retries_follow_the_schedule_with_a_stable_id(
    database: Database, receiver: Receiver
) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    endpoint, _ = _endpoint(engine, org, receiver.url)
    with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
        queue_test_delivery(conn, endpoint, NOW)
    receiver.answers.extend([(500, {}), (302, {"location": "http://example.com/"}), (503, {})])
    t = NOW
    times = []
    for step in range(4):
        assert run_deliveries(engine, t - timedelta(seconds=1), SETTINGS).as_dict() == {
            "delivered": 0, "retried": 0, "failed": 0, "disabled": 0}  # not due yet  # fmt: skip
        summary = run_deliveries(engine, t, SETTINGS)
        times.append(t)
        [d] = rows(engine, "SELECT status, attempts, next_attempt_at FROM webhook_deliveries")
        if step < 3:
            assert summary.retried == 1
            assert d["status"] == "pending"
            assert d["next_attempt_at"] == t + RETRY_SCHEDULE[step]
            t = d["next_attempt_at"]
    assert d["status"] == "delivered"
    assert d["attempts"] == 4
    assert [r.path for r in receiver.received] == ["/hook"] * 4  # the redirect not followed
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert [int(r.headers["webhook-timestamp"]) for r in receiver.received] == [
        int(x.timestamp()) for x in times
    ]


def test_retry_after_is_honoured(database: Database, receiver: Receiver) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    endpoint, _ = _endpoint(engine, org, receiver.url)
    with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
        queue_test_delivery(conn, endpoint, NOW)
    receiver.answers.append((429, {"retry-after": "3600"}))
    run_deliveries(engine, NOW, SETTINGS)
    [d] = rows(engine, "SELECT next_attempt_at, response_code FROM webhook_deliveries")
    assert d == {"next_attempt_at": NOW + timedelta(hours=1), "response_code": 429}


def test_410_disables_the_endpoint_with_an_inbox_notice(
    database: Database, receiver: Receiver
) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    endpoint, _ = _endpoint(engine, org, receiver.url, name="ops hook")
    with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
        queue_test_delivery(conn, endpoint, NOW)
        queue_test_delivery(conn, endpoint, NOW + timedelta(minutes=1))
    receiver.default = 410
    assert run_deliveries(engine, NOW, SETTINGS).disabled == 1
    [e] = rows(engine, "SELECT enabled, disabled_reason FROM notification_endpoints")
    assert e == {"enabled": False, "disabled_reason": "the endpoint answered 410 Gone"}
    statuses = rows(engine, "SELECT status FROM webhook_deliveries ORDER BY created_at")
    assert [s["status"] for s in statuses] == ["failed", "failed"]
    notice = rows(engine, "SELECT type, title FROM notifications WHERE type = 'system.notice'")
    assert len(notice) == 1
    assert "ops hook" in notice[0]["title"]
    assert run_deliveries(engine, NOW + timedelta(hours=1), SETTINGS).as_dict()["delivered"] == 0
    assert len(receiver.received) == 1


def test_receiver_down_for_a_while_gets_every_notification_once(database: Database) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    receiver = Receiver()  # not started: connections are refused
    _endpoint(engine, org, receiver.url)
    _firing_rules(engine, org, 5)
    run_cycle(engine, NOW)
    run_cycle(engine, NOW + timedelta(minutes=1))
    t = NOW + timedelta(minutes=1)
    for _ in range(3):  # three failed rounds, on the schedule
        assert run_deliveries(engine, t, SETTINGS).retried == 5
        t = rows(engine, "SELECT max(next_attempt_at) AS t FROM webhook_deliveries")[0]["t"]
    receiver.start()
    try:
        for _ in range(3):  # back: delivered at the next attempt; later runs send nothing
            run_deliveries(engine, t, SETTINGS)
            t += timedelta(hours=1)
    finally:
        receiver.stop()
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 5
    assert len(set(ids)) == 5
    stored = rows(engine, "SELECT webhook_id, status, attempts FROM webhook_deliveries")
    assert sorted(ids) == sorted(s["webhook_id"] for s in stored)
    assert {(s["status"], s["attempts"]) for s in stored} == {("delivered", 4)}
    names = {
        json.loads(r.body)["data"]["alerts"][0]["labels"]["alertname"] for r in receiver.received
    }
    assert names == {f"always {i}" for i in range(5)}


def test_rotation_sends_both_signatures(database: Database, receiver: Receiver) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    endpoint, old = _endpoint(engine, org, receiver.url, format="alertmanager")
    with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
        new = rotate_secret(conn, endpoint, NOW)
        queue_test_delivery(conn, endpoint, NOW)
    run_deliveries(engine, NOW, SETTINGS)
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        body = Webhook(secret).verify(got.body, got.headers)
        assert body["version"] == "4"
        assert body["alerts"][0]["status"] == "firing"


def test_endpoint_failing_for_days_is_disabled_with_a_notice(database: Database) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    receiver = Receiver(default=500).start()
    try:
        endpoint, _ = _endpoint(engine, org, receiver.url, name="flaky")
        settings = AlertingSettings(allow_private_targets=True, disable_after_days=2)
        t = NOW
        for day in range(3):  # a new test notification each day; every attempt fails
            with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
                queue_test_delivery(conn, endpoint, t)
            summary = run_deliveries(engine, t, settings)
            if day < 2:
                assert summary.disabled == 0
            t += timedelta(days=1)
        assert summary.disabled == 1
    finally:
        receiver.stop()
    [e] = rows(engine, "SELECT enabled, disabled_reason, failing_since FROM notification_endpoints")
    assert e["enabled"] is False
    assert e["failing_since"] == NOW
    assert e["disabled_reason"].startswith("failing since")
    notices = rows(engine, "SELECT title FROM notifications WHERE type = 'system.notice'")
    assert len(notices) == 1
    assert "flaky" in notices[0]["title"]
    pending = rows(engine, "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'")
    assert pending == [{"n": 0}]

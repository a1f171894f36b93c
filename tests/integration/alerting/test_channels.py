"""Email through a real SMTP server (aiosmtpd), Slack messages to a real HTTP server, and
alerts pushed to a real Prometheus Alertmanager that lists them in its API."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from alerting.cycle import run_cycle
from alerting.deliver import run_deliveries
from alerting.settings import AlertingSettings
from storage import DbRole, Scope, scoped_transaction
from storage.alerts.rules import create_endpoint
from storage.alerts.spec import EndpointSpec
from storage.database import Database
from storage.embedded import free_port
from tests.integration.alerting._receiver import Receiver
from tests.integration.alerting._world import add_rule, make_org, rows

pytestmark = pytest.mark.usefixtures("pg_server")


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def _endpoint(engine: Engine, org: uuid.UUID, **spec: Any) -> uuid.UUID:
    with scoped_transaction(engine, Scope(DbRole.TENANT, org)) as conn:
        endpoint_id, _ = create_endpoint(conn, org, EndpointSpec.model_validate(spec))
    return endpoint_id


def _fire(engine: Engine, org: uuid.UUID, NOW: datetime) -> None:
    name = "queue stuck"
    add_rule(engine, org, name=name, type="threshold", no_data_state="alerting", severity="critical",
             labels={"team": "ops"}, annotations={"runbook": "https://runbooks.example/q"},
             params={"measure": "span_count", "value": 1})  # fmt: skip
    run_cycle(engine, NOW)
    run_cycle(engine, NOW + timedelta(minutes=1))


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def test_email_arrives_with_headers_text_and_html(database: Database) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    _endpoint(engine, org, kind="email", email="oncall@acme.example, lead@acme.example")
    _fire(engine, org, NOW)
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = AlertingSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                                    smtp_from="AEOS <alerts@aeos.example>",
                                    base_url="https://aeos.example")  # fmt: skip
        assert run_deliveries(engine, NOW + timedelta(minutes=1), settings).delivered == 1
    finally:
        controller.stop()
    [(sender, to, raw)] = inbox.messages
    assert sender == "alerts@aeos.example"
    assert sorted(to) == ["lead@acme.example", "oncall@acme.example"]
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == "[FIRING:1] queue stuck"
    [wid] = [r["webhook_id"] for r in rows(engine, "SELECT webhook_id FROM webhook_deliveries")]
    assert msg["Message-ID"] == f"<{wid}@aeos>"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "Severity: critical" in text.get_content()
    assert "https://aeos.example/alerts/" in text.get_content()
    assert '<a href="https://aeos.example/alerts/' in html.get_content()


def test_slack_message_has_title_colour_and_link(database: Database) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    receiver = Receiver().start()
    try:
        _endpoint(engine, org, kind="slack", url=receiver.url)
        _fire(engine, org, NOW)
        settings = AlertingSettings(allow_private_targets=True, base_url="https://aeos.example")
        assert run_deliveries(engine, NOW + timedelta(minutes=1), settings).delivered == 1
    finally:
        receiver.stop()
    [got] = receiver.received
    body = json.loads(got.body)
    [attachment] = body["attachments"]
    assert body["text"] == "[FIRING:1] queue stuck"
    assert attachment["color"] == "#d92d20"  # critical
    assert attachment["title_link"].startswith("https://aeos.example/alerts/")
    assert "value=" in attachment["text"]


def test_private_targets_are_refused_by_default(database: Database) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    receiver = Receiver().start()
    try:
        _endpoint(engine, org, kind="slack", url=receiver.url)
        _fire(engine, org, NOW)
        summary = run_deliveries(engine, NOW + timedelta(minutes=1), AlertingSettings())
    finally:
        receiver.stop()
    assert summary.failed == 1
    assert receiver.received == []
    [d] = rows(engine, "SELECT status, error FROM webhook_deliveries")
    assert d["status"] == "failed"
    assert "not a public address" in d["error"]


@pytest.fixture
def alertmanager() -> Iterator[str]:
    if ALERTMANAGER is None:
        pytest.skip(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    with tempfile.TemporaryDirectory(prefix="aeos-am-") as tmp:
        config = Path(tmp) / "alertmanager.yml"
        config.write_text("route:\n  receiver: default\nreceivers:\n  - name: default\n")
        port = free_port()
        proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                pytest.fail("alertmanager did not become ready")
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def test_alertmanager_receives_and_lists_our_alerts(database: Database, alertmanager: str) -> None:
    NOW = _now()  # per test: signatures are checked against the real clock
    engine = database.app_engine()
    org = make_org(database, "acme")
    _endpoint(engine, org, kind="alertmanager", url=alertmanager)
    _fire(engine, org, NOW)
    settings = AlertingSettings(allow_private_targets=True, base_url="https://aeos.example")
    assert run_deliveries(engine, NOW + timedelta(minutes=1), settings).delivered == 1
    listed = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
    [alert] = listed
    assert alert["labels"] == {"alertname": "queue stuck", "team": "ops"}
    assert alert["annotations"]["runbook"] == "https://runbooks.example/q"
    assert alert["annotations"]["summary"] == "[FIRING:1] queue stuck"
    assert alert["generatorURL"].startswith("https://aeos.example/alerts/")
    assert alert["status"]["state"] == "active"

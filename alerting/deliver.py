"""Stage 4, delivery: durable deliveries sent with retries (no transaction held while
sending).

A delivery row is created with its notification (stage 3). :func:`run_deliveries` claims
due rows (``FOR UPDATE SKIP LOCKED``, moving them a lease ahead, so a process that dies
mid-send leaves them to be retried), sends each with no transaction open, and records
the outcome:

- 2xx (SMTP: accepted): delivered; the endpoint's failure clock stops;
- 410 Gone: the endpoint is disabled at once (Standard Webhooks), with an inbox notice;
- anything else (3xx: redirects are not followed; timeouts after 15 s; refused
  connections): retried after :data:`RETRY_SCHEDULE` (the reference notes' example
  schedule), or after ``Retry-After`` when the receiver asks for longer; exhausted after
  the last step; an endpoint failing for ``disable_after_days`` is disabled with a notice.

A webhook's ``webhook-id`` is the delivery's ``webhook_id``, the same on every retry, so a
receiver that saw an attempt whose answer got lost can drop the duplicate.
"""

from __future__ import annotations

import email.utils
import logging
import smtplib
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, Engine

from alerting import payloads, signing
from alerting.settings import AlertingSettings
from alerting.ssrf import BlockedTargetError, check_url
from storage import DbRole, Scope, scoped_transaction
from storage import alert_engine as store

_log = logging.getLogger(__name__)

RETRY_SCHEDULE = tuple(
    timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
)  # 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h
LEASE = timedelta(minutes=2)
MAX_RETRY_AFTER = timedelta(hours=24)
USER_AGENT = "aeos-alerting/1"


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one send went."""

    ok: bool
    code: int | None = None
    error: str | None = None
    gone: bool = False
    permanent: bool = False
    retry_after: timedelta | None = None


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a delay, capped at a day."""
    if not value:
        return None
    try:
        delay = timedelta(seconds=int(value.strip()))
    except ValueError:
        try:
            delay = email.utils.parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return min(max(delay, timedelta(0)), MAX_RETRY_AFTER)


def post_json(
    url: str, body: bytes, headers: Mapping[str, str], settings: AlertingSettings, now: datetime
) -> Attempt:
    """POSTs ``body`` to ``url`` through the SSRF guard, connecting to the checked address."""
    try:
        target = check_url(url, allow_private=settings.allow_private_targets)
    except BlockedTargetError as exc:
        return Attempt(False, error=f"blocked: {exc}", permanent=True)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    sent = {"content-type": "application/json", "user-agent": USER_AGENT,
            **headers, "host": target.host_header()}  # fmt: skip
    try:
        with httpx.Client(
            timeout=settings.http_timeout_s, follow_redirects=False, trust_env=False
        ) as client:
            request = client.build_request("POST", target.connect_url(), content=body,
                                           headers=sent, extensions=extensions)  # fmt: skip
            response = client.send(request, stream=True)
            response.close()  # the body is not needed: only the status counts
    except httpx.HTTPError as exc:
        return Attempt(False, error=f"{type(exc).__name__}: {exc}"[:500])
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(True, code)
    return Attempt(
        False, code, error=f"HTTP {code}", gone=code == 410,
        retry_after=retry_after(response.headers.get("retry-after"), now),
    )  # fmt: skip


def send_email(d: Mapping[str, Any], settings: AlertingSettings) -> Attempt:
    """Sends the notification by SMTP (settings ``AEOS_ALERTING_SMTP_*``)."""
    if not settings.smtp_host:
        return Attempt(False, error="no SMTP server configured (AEOS_ALERTING_SMTP_HOST)")
    msg = payloads.email(d, settings.base_url, settings.smtp_from, d["email"])
    try:
        smtp_class = smtplib.SMTP_SSL if settings.smtp_security == "tls" else smtplib.SMTP
        with smtp_class(
            settings.smtp_host, settings.smtp_port, timeout=settings.http_timeout_s
        ) as smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        return Attempt(False, error=f"{type(exc).__name__}: {exc}"[:500])
    return Attempt(True, 250)


def send(d: Mapping[str, Any], settings: AlertingSettings, now: datetime) -> Attempt:
    """Sends one delivery to its endpoint, in the endpoint's kind and format."""
    if not d["enabled"]:
        return Attempt(False, error="the endpoint is disabled", permanent=True)
    kind, base = d["kind"], settings.base_url
    if kind == "email":
        return send_email(d, settings)
    if kind == "slack":
        return post_json(d["url"], payloads.dumps(payloads.slack(d, base)), {}, settings, now)
    if kind == "alertmanager":
        url = d["url"].rstrip("/") + "/api/v2/alerts"
        return post_json(
            url, payloads.dumps(payloads.alertmanager_push(d, base)), {}, settings, now
        )
    receiver = d["endpoint_name"] or str(d["endpoint_id"])
    body = payloads.dumps(
        payloads.alertmanager_webhook(d, base, receiver)
        if d["format"] == "alertmanager"
        else payloads.event(d, base)
    )
    keys = [d["secret"]]
    if d["previous_secret"] and d["previous_secret_until"] and d["previous_secret_until"] > now:
        keys.append(d["previous_secret"])
    headers = signing.headers(keys, d["webhook_id"], int(now.timestamp()), body)
    return post_json(d["url"], body, headers, settings, now)


@dataclass
class DeliverySummary:
    """What a delivery run did."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON-able summary."""
        return {"delivered": self.delivered, "retried": self.retried, "failed": self.failed,
                "disabled": self.disabled}  # fmt: skip


def run_deliveries(
    engine: Engine,
    now: datetime | None = None,
    settings: AlertingSettings | None = None,
    limit: int = 100,
) -> DeliverySummary:
    """Sends every due delivery once (see the module docstring)."""
    settings = settings or AlertingSettings()
    now = now or datetime.now(UTC)
    summary = DeliverySummary()
    with scoped_transaction(engine, Scope(DbRole.WORKER)) as conn:
        due = store.claim_deliveries(conn, now, limit, LEASE.total_seconds())
    for d in due:
        result = send(d, settings, now)
        with scoped_transaction(engine, Scope(DbRole.WORKER)) as conn:
            _record(conn, d, result, now, settings, summary)
    return summary


def _record(
    conn: Connection,
    d: Mapping[str, Any],
    r: Attempt,
    now: datetime,
    settings: AlertingSettings,
    summary: DeliverySummary,
) -> None:
    attempts = d["attempts"] + 1
    if r.ok:
        status, next_at = "delivered", None
        store.endpoint_succeeded(conn, d["endpoint_id"])
        summary.delivered += 1
    elif r.gone or r.permanent or attempts > len(RETRY_SCHEDULE):
        status, next_at = "failed", None
        summary.failed += 1
    else:
        status = "pending"
        delay = max(RETRY_SCHEDULE[attempts - 1], r.retry_after or timedelta(0))
        next_at = now + delay
        summary.retried += 1
    store.record_attempt(
        conn, d["id"], status=status, code=r.code, error=r.error, now=now, next_at=next_at
    )
    if r.ok or r.permanent:
        return
    if r.gone:
        _disable(conn, d, now, "the endpoint answered 410 Gone", summary)
        return
    failing_since = store.endpoint_failed(conn, d["endpoint_id"], now)
    if failing_since and now - failing_since >= timedelta(days=settings.disable_after_days):
        _disable(conn, d, now, f"failing since {failing_since.isoformat()}", summary)


def _disable(
    conn: Connection, d: Mapping[str, Any], now: datetime, reason: str, summary: DeliverySummary
) -> None:
    row = store.disable_endpoint(conn, d["endpoint_id"], reason, now)
    if row is None:
        return  # disabled already (by another process)
    summary.disabled += 1
    name = row[0] or d["url"] or d["email"]
    title = f"Notification endpoint {name} ({row[1]}) was disabled: {reason}"
    store.notify(conn, store.NewNotification(
        org_id=d["org_id"], type="system.notice", severity="warning", title=title,
        body=f"{title}. Fix it and enable it again to resume deliveries.", rule_id=None,
        dedup_key=f"endpoint-disabled:{d['endpoint_id']}:{now.isoformat()}",
        labels={"endpoint_id": str(d["endpoint_id"])}, details={"reason": reason},
    ), now)  # fmt: skip


def new_webhook_id() -> str:
    """A fresh ``webhook-id`` (test deliveries)."""
    return f"msg_{uuid.uuid4()}"

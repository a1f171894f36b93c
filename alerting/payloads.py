"""What each endpoint kind receives for a notification (pure rendering, no I/O).

Our event format (webhook ``format = aeos``), following the Standard Webhooks payload
recommendation::

    {"type": "alert.firing" | "alert.resolved" | "budget.threshold" | "budget.forecast"
             | "test",
     "timestamp": "<RFC 3339, when the notification was created>",
     "data": {"notification_id", "org_id", "title", "body", "severity", "rule_id",
              "labels", "status", "alerts": [...], "url", ...details}}

Alertmanager's v4 webhook body (``format = alertmanager``) for receivers that already
consume it; a Slack incoming-webhook message; Alertmanager ``/api/v2/alerts`` postable
alerts; an email (text and HTML).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from typing import Any

SLACK_COLOURS = {"critical": "#d92d20", "warning": "#f79009", "info": "#2e90fa"}
RESOLVED_COLOUR = "#12b76a"


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def link(base_url: str, n: Mapping[str, Any]) -> str:
    """Where the app shows the notification's rule (or the inbox)."""
    base = base_url.rstrip("/")
    return f"{base}/alerts/{n['rule_id']}" if n.get("rule_id") else f"{base}/notifications"


def event(n: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """Our event format (see the module docstring)."""
    details = dict(n.get("details") or {})
    alerts = [{k: _iso(v) for k, v in a.items()} for a in details.pop("alerts", [])]
    return {
        "type": n["type"],
        "timestamp": _iso(n["notified_at"]),
        "data": {
            "notification_id": str(n["notification_id"]),
            "org_id": str(n["org_id"]),
            "title": n["title"],
            "body": n["body"],
            "severity": n["severity"],
            "rule_id": str(n["rule_id"]) if n.get("rule_id") else None,
            "labels": dict(n.get("labels") or {}),
            "alerts": alerts,
            "url": link(base_url, n),
            **details,
        },
    }


def _alerts(n: Mapping[str, Any], base_url: str) -> list[dict[str, Any]]:
    details = n.get("details") or {}
    alerts = details.get("alerts")
    if not alerts:  # budget steps and tests: one alert made of the notification itself
        alerts = [{"status": details.get("status", "firing"), "labels": dict(n.get("labels") or {}),
                   "annotations": {}, "startsAt": n["notified_at"], "endsAt": None,
                   "fingerprint": str(n["notification_id"])[:16]}]  # fmt: skip
    out = []
    for a in alerts:
        annotations = {"summary": n["title"], **(a.get("annotations") or {})}
        out.append({
            "status": a["status"], "labels": {k: str(v) for k, v in a["labels"].items()},
            "annotations": annotations, "startsAt": _iso(a.get("startsAt")),
            "endsAt": _iso(a.get("endsAt")) or "0001-01-01T00:00:00Z",
            "generatorURL": link(base_url, n), "fingerprint": a.get("fingerprint", ""),
        })  # fmt: skip
    return out


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def alertmanager_webhook(n: Mapping[str, Any], base_url: str, receiver: str) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4."""
    alerts = _alerts(n, base_url)
    details = n.get("details") or {}
    return {
        "version": "4",
        "groupKey": details.get("group_key", f"notification:{n['notification_id']}"),
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": dict(n.get("labels") or {}).get("alertname", n["title"])},
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": base_url,
        "alerts": alerts,
    }


def alertmanager_push(n: Mapping[str, Any], base_url: str) -> list[dict[str, Any]]:
    """Postable alerts for ``POST /api/v2/alerts`` (resolved ones with their end time)."""
    out = []
    for a in _alerts(n, base_url):
        alert = {"labels": a["labels"], "annotations": a["annotations"],
                 "startsAt": a["startsAt"], "generatorURL": a["generatorURL"]}  # fmt: skip
        if a["status"] == "resolved" and a["endsAt"] != "0001-01-01T00:00:00Z":
            alert["endsAt"] = a["endsAt"]
        out.append(alert)
    return out


def slack(n: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: title, severity colour, value, link."""
    resolved = n["type"].endswith("resolved")
    colour = RESOLVED_COLOUR if resolved else SLACK_COLOURS.get(n["severity"], "#2e90fa")
    url = link(base_url, n)
    return {
        "text": n["title"],
        "attachments": [{
            "color": colour, "title": n["title"], "title_link": url,
            "text": n["body"] or "", "footer": f"severity {n['severity']}",
        }],
    }  # fmt: skip


def email(n: Mapping[str, Any], base_url: str, sender: str, to: str) -> EmailMessage:
    """A text + HTML email with a link to the view."""
    url = link(base_url, n)
    msg = EmailMessage()
    msg["Subject"] = n["title"]
    msg["From"] = sender
    msg["To"] = to
    msg["X-AEOS-Notification-Id"] = str(n["notification_id"])
    msg["Message-ID"] = f"<{n['webhook_id']}@aeos>"
    body = n["body"] or ""
    msg.set_content(f"{n['title']}\n\nSeverity: {n['severity']}\n\n{body}\n\nView: {url}\n")
    rows = "".join(f"<li>{html.escape(line)}</li>" for line in body.splitlines())
    msg.add_alternative(
        f"<html><body><h2>{html.escape(n['title'])}</h2>"
        f"<p>Severity: <b>{html.escape(n['severity'])}</b></p><ul>{rows}</ul>"
        f'<p><a href="{html.escape(url)}">View in AEOS</a></p></body></html>',
        subtype="html",
    )
    return msg


def dumps(body: Any) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(body, separators=(",", ":"), default=str).encode()

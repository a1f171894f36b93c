"""Stage 3, notification: grouping with Alertmanager's timers, silences, inbox rows.

One group per rule (Grafana's default policy groups by alert rule). A change of the
rule's alert set schedules a flush: ``group_wait`` after the first change of a group
never notified, else ``group_interval`` after the last notification. A flush notifies
when the set of firing (unsilenced) instances differs from the one last notified, or,
unchanged and still firing, once ``repeat_interval`` has passed; an alert that fired and
resolved within ``group_wait`` is never notified. Each notification is one inbox row and
one delivery per matching endpoint (:func:`storage.alerts.engine.notify`).

Budget steps do not wait: each is notified once, when first reached in its period.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from alerting.budget import FORECAST_STEP
from alerting.evaluate import BudgetStatus
from alerting.states import fingerprint
from storage import alert_engine as store


@dataclass(frozen=True, slots=True)
class Timers:
    """Alertmanager's route timing (its defaults)."""

    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)


Silences = Sequence[tuple[uuid.UUID | None, Mapping[str, str]]]


def silenced(silences: Silences, rule_id: uuid.UUID, labels: Mapping[str, str]) -> bool:
    """Whether a silence mutes this rule instance (its rule, and all its label matchers)."""
    for rule, matchers in silences:
        if rule not in (None, rule_id):
            continue
        if all(labels.get(k) == v for k, v in matchers.items()):
            return True
    return False


def _digest(firing: Sequence[Mapping[str, Any]]) -> str:
    if not firing:
        return ""
    fps = ",".join(sorted(str(i["fingerprint"]) for i in firing))
    return hashlib.sha256(fps.encode()).hexdigest()[:16]


def _all_labels(group: store.DueGroup, labels: Mapping[str, str]) -> dict[str, str]:
    """An alert's labels: alertname, the rule's labels, the instance's (Alertmanager's)."""
    return {"alertname": group.name, **group.rule_labels, **labels}


def _alert(
    inst: Mapping[str, Any], rule_labels: Mapping[str, str], group: store.DueGroup
) -> dict[str, Any]:
    labels = {"alertname": group.name, **rule_labels, **inst["labels"]}
    return {
        "status": "firing" if inst["is_firing"] else "resolved",
        "labels": labels,
        "annotations": dict(group.annotations),
        "startsAt": _rfc3339(inst["fired_at"]),
        "endsAt": None if inst["is_firing"] else _rfc3339(inst["resolved_at"]),
        "fingerprint": inst["fingerprint"] or fingerprint({"rule": str(group.rule_id)}),
        "value": inst["last_value"],
    }


def _rfc3339(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def flush_due_groups(conn: Connection, now: datetime, timers: Timers, limit: int = 500) -> int:
    """Flushes every due group (worker connection); returns the notifications created."""
    created = 0
    silences_by_org: dict[uuid.UUID, Silences] = {}
    for group in store.claim_due_groups(conn, now, limit):
        if group.org_id not in silences_by_org:
            silences_by_org[group.org_id] = store.active_silences(conn, group.org_id, now)
        created += _flush(conn, group, now, timers, silences_by_org[group.org_id])
    return created


def _flush(
    conn: Connection, group: store.DueGroup, now: datetime, timers: Timers, silences: Silences
) -> int:
    fired = [
        i
        for i in store.group_instances(conn, group.rule_id, group.last_flush_at)
        if i["fired_at"] is not None
    ]
    instances = [
        i for i in fired if not silenced(silences, group.rule_id, _all_labels(group, i["labels"]))
    ]
    firing = [i for i in instances if i["is_firing"]]
    digest = _digest(firing)
    changed = digest != group.last_digest
    repeat = (
        not changed
        and bool(firing)
        and group.last_flush_at is not None
        and now - group.last_flush_at >= timers.repeat_interval
    )
    notify = (changed and (bool(firing) or group.last_digest != "")) or repeat
    if notify:
        _notify_group(conn, group, now, firing, instances, digest)
    # While anything fires (silenced or not) the group is looked at again every
    # group_interval: for repeats, and to notify what a silence that ended was hiding.
    next_at = now + timers.group_interval if any(i["is_firing"] for i in fired) else None
    store.flush_group(
        conn, group, now, digest if notify else group.last_digest, next_at, notified=notify
    )
    return int(notify)


def _notify_group(
    conn: Connection,
    group: store.DueGroup,
    now: datetime,
    firing: Sequence[Mapping[str, Any]],
    instances: Sequence[Mapping[str, Any]],
    digest: str,
) -> None:
    alerts = [_alert(i, group.rule_labels, group) for i in instances]
    status = "firing" if firing else "resolved"
    title = f"[FIRING:{len(firing)}] {group.name}" if firing else f"[RESOLVED] {group.name}"
    lines = [f"{a['status']}: {_labels_text(a['labels'])} value={a['value']}" for a in alerts]
    store.notify(
        conn,
        store.NewNotification(
            org_id=group.org_id,
            type=f"alert.{status}",
            severity=group.severity,
            title=title,
            body="\n".join(lines),
            rule_id=group.rule_id,
            dedup_key=f"alert:{group.rule_id}:{now.isoformat()}:{digest}",
            labels={"alertname": group.name, **group.rule_labels},
            details={
                "status": status,
                "group_key": f"rule:{group.rule_id}",
                "rule": {"id": str(group.rule_id), "name": group.name, "type": group.type},
                "alerts": alerts,
            },
        ),
        now,
    )


def _labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def notify_budget_steps(
    conn: Connection,
    rule: store.RuleRow,
    period: str,
    statuses: Sequence[BudgetStatus],
    amount: float,
    now: datetime,
) -> int:
    """Notifies each budget step reached for the first time in ``period``."""
    created = 0
    silences: Silences | None = None
    for status in statuses:
        fp = fingerprint(status.labels)
        keys = {(f"{fp}/{s}" if fp else s): s for s in status.steps}
        for key in store.mark_budget_steps(conn, rule.org_id, rule.id, period, keys, now):
            if silences is None:  # read only when a step is new: most evaluations add none
                silences = store.active_silences(conn, rule.org_id, now)
            labels = {"alertname": rule.name, **rule.labels, **status.labels}
            if silenced(silences, rule.id, labels):
                continue
            store.notify(conn, _budget_notification(rule, period, status, keys[key], amount), now)
            created += 1
    return created


def _budget_notification(
    rule: store.RuleRow, period: str, status: BudgetStatus, step: str, amount: float
) -> store.NewNotification:
    where = f" ({_labels_text(status.labels)})" if status.labels else ""
    if step == FORECAST_STEP:
        kind, title = (
            "budget.forecast",
            (
                f"{rule.name}{where}: spend forecast ${status.projected:.2f} "
                f"exceeds the ${amount:.2f} budget for {period}"
            ),
        )
    else:
        kind, title = (
            "budget.threshold",
            (
                f"{rule.name}{where}: {step} % of the ${amount:.2f} budget for {period} "
                f"reached (${status.spend:.2f})"
            ),
        )
    return store.NewNotification(
        org_id=rule.org_id,
        type=kind,
        severity=rule.severity,
        title=title,
        body=title,
        rule_id=rule.id,
        dedup_key=f"budget:{rule.id}:{period}:{fingerprint(status.labels)}:{step}",
        labels={"alertname": rule.name, **rule.labels, **status.labels},
        details={
            "status": "firing",
            "rule": {"id": str(rule.id), "name": rule.name, "type": rule.type},
            "period": period,
            "step": step,
            "spend_usd": status.spend,
            "projected_usd": status.projected,
            "amount_usd": amount,
            "budget_percentage_used": round(100 * status.spend / amount, 2),
        },
    )

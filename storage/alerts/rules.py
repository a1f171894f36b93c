"""Configuration of alerting, read and written by a tenant- or staff-scoped connection:
rules, silences, endpoints, the inbox and a rule's history (the API and CLI use these).

Writers take validated specs (``storage.alerts.spec``); the database's row-level security
decides which org a connection may touch, so these functions never check it themselves.
Endpoint secrets are returned only by :func:`create_endpoint` and :func:`rotate_secret`.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Text, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from storage.alerts import _sql
from storage.alerts.spec import EndpointSpec, RuleSpec
from storage.errors import NotFoundError
from storage.schema import (
    alert_evaluations,
    alert_rules,
    alert_silences,
    alert_states,
    notification_endpoints,
    notifications,
)

#: How long the previous webhook secret is still used to sign after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)
_RULE_COLUMNS = tuple(RuleSpec.model_fields)


@dataclass(frozen=True, slots=True)
class StoredRule:
    """A rule and its identity."""

    id: uuid.UUID
    org_id: uuid.UUID
    spec: RuleSpec
    created_at: datetime
    updated_at: datetime | None


def _rule(row: Row[Any]) -> StoredRule:
    m = row._mapping
    spec = RuleSpec.model_validate({k: m[k] for k in _RULE_COLUMNS})
    return StoredRule(m["id"], m["org_id"], spec, m["created_at"], m["updated_at"])


def create_rule(conn: Connection, org_id: uuid.UUID, spec: RuleSpec) -> StoredRule:
    """Adds a rule to ``org_id``; it is due for evaluation at once."""
    row = conn.execute(
        insert(alert_rules).values(org_id=org_id, **spec.model_dump()).returning(alert_rules)
    ).one()
    return _rule(row)


def list_rules(conn: Connection, org_id: uuid.UUID | None = None) -> list[StoredRule]:
    """Rules visible to the connection (of ``org_id`` if given), by name."""
    q = select(alert_rules).order_by(alert_rules.c.name, alert_rules.c.id)
    if org_id is not None:
        q = q.where(alert_rules.c.org_id == org_id)
    return [_rule(r) for r in conn.execute(q)]


def get_rule(conn: Connection, rule_id: uuid.UUID) -> StoredRule:
    """One rule. Raises NotFoundError (also for another org's rule)."""
    row = conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).first()
    if row is None:
        raise NotFoundError(f"no alert rule {rule_id}")
    return _rule(row)


def update_rule(conn: Connection, rule_id: uuid.UUID, spec: RuleSpec) -> StoredRule:
    """Replaces a rule's spec; it is re-evaluated at once. Raises NotFoundError."""
    row = conn.execute(
        update(alert_rules)
        .where(alert_rules.c.id == rule_id)
        .values(**spec.model_dump(), updated_at=func.now(), next_eval_at=None)
        .returning(alert_rules)
    ).first()
    if row is None:
        raise NotFoundError(f"no alert rule {rule_id}")
    return _rule(row)


def delete_rule(conn: Connection, rule_id: uuid.UUID) -> None:
    """Deletes a rule with its states. Raises NotFoundError."""
    if conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id)).rowcount == 0:
        raise NotFoundError(f"no alert rule {rule_id}")


def rule_states(conn: Connection, rule_id: uuid.UUID) -> list[dict[str, Any]]:
    """Current instances of a rule."""
    q = select(alert_states).where(alert_states.c.rule_id == rule_id)
    return [dict(r._mapping) for r in conn.execute(q.order_by(alert_states.c.fingerprint))]


def rule_history(
    conn: Connection, rule_id: uuid.UUID, start: datetime, end: datetime, limit: int = 500
) -> list[dict[str, Any]]:
    """Evaluations of a rule in [start, end), newest first."""
    t = alert_evaluations
    q = (
        select(t.c.time, t.c.state, t.c.value, t.c.details)
        .where(t.c.rule_id == rule_id, t.c.time >= start, t.c.time < end)
        .order_by(t.c.time.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def firing_count(conn: Connection) -> int:
    """Alert instances firing now (the org overview's "alerts firing")."""
    q = select(func.count()).select_from(alert_states).where(alert_states.c.is_firing)
    return int(conn.execute(q).scalar_one())


def add_silence(
    conn: Connection,
    org_id: uuid.UUID,
    *,
    rule_id: uuid.UUID | None,
    matchers: dict[str, str],
    starts_at: datetime,
    ends_at: datetime,
    comment: str = "",
    created_by: str = "",
) -> uuid.UUID:
    """Mutes a rule (or every rule) for instances matching ``matchers`` until ``ends_at``."""
    values = dict(org_id=org_id, rule_id=rule_id, matchers=matchers, starts_at=starts_at,
                  ends_at=ends_at, comment=comment, created_by=created_by)  # fmt: skip
    q = insert(alert_silences).values(**values).returning(alert_silences.c.id)
    silence_id: uuid.UUID = conn.execute(q).scalar_one()
    return silence_id


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(
    conn: Connection, org_id: uuid.UUID, spec: EndpointSpec
) -> tuple[uuid.UUID, str | None]:
    """Adds an endpoint; returns its id and, for a webhook, its secret (shown once)."""
    secret = new_secret() if spec.kind == "webhook" else None
    q = (
        insert(notification_endpoints)
        .values(org_id=org_id, secret=secret, **spec.model_dump())
        .returning(notification_endpoints.c.id)
    )
    endpoint_id: uuid.UUID = conn.execute(q).scalar_one()
    return endpoint_id, secret


def rotate_secret(conn: Connection, endpoint_id: uuid.UUID, now: datetime) -> str:
    """A new webhook secret; the old one still signs (second signature) for a day."""
    secret = new_secret()
    t = notification_endpoints
    row = conn.execute(
        update(t)
        .where(t.c.id == endpoint_id, t.c.kind == "webhook")
        .values(
            previous_secret=t.c.secret,
            previous_secret_until=now + ROTATION_OVERLAP,
            secret=secret,
            updated_at=now,
        )
        .returning(t.c.id)
    ).first()
    if row is None:
        raise NotFoundError(f"no webhook endpoint {endpoint_id}")
    return secret


def queue_test_delivery(conn: Connection, endpoint_id: uuid.UUID, now: datetime) -> str:
    """Queues a test notification to one endpoint; returns its ``webhook-id``."""
    row = conn.execute(_sql.INSERT_TEST_DELIVERY, {"endpoint_id": endpoint_id, "now": now}).first()
    if row is None:
        raise NotFoundError(f"no notification endpoint {endpoint_id}")
    return str(row.webhook_id)


def list_notifications(
    conn: Connection,
    *,
    unread_only: bool = False,
    type_: str | None = None,
    severity: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """The inbox, newest first, and its unread count."""
    t = notifications
    q = select(t).order_by(t.c.created_at.desc(), t.c.id).limit(limit)
    if unread_only:
        q = q.where(t.c.read_at.is_(None))
    if type_:
        q = q.where(t.c.type == type_)
    if severity:
        q = q.where(t.c.severity == severity)
    unread = conn.execute(select(func.count()).select_from(t).where(t.c.read_at.is_(None)))
    return [dict(r._mapping) for r in conn.execute(q)], int(unread.scalar_one())


def mark_read(conn: Connection, now: datetime, notification_id: uuid.UUID | None = None) -> int:
    """Marks one notification (or all) read; returns how many changed."""
    t = notifications
    q = update(t).where(t.c.read_at.is_(None)).values(read_at=now)
    if notification_id is not None:
        q = q.where(t.c.id == notification_id)
    return conn.execute(q).rowcount


def incidents(conn: Connection, since: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Alert instances firing now or resolved since ``since``, newest first (the
    Anomalies & Incidents feed), with their rule and org."""
    s, r = alert_states, alert_rules
    q = (
        select(
            s.c.org_id,
            s.c.rule_id,
            r.c.name.label("rule_name"),
            r.c.type,
            r.c.severity,
            s.c.fingerprint,
            s.c.labels,
            s.c.state,
            s.c.is_firing,
            s.c.fired_at,
            s.c.resolved_at,
            s.c.last_value,
            s.c.reason,
        )
        .join(r, r.c.id == s.c.rule_id)
        .where(s.c.fired_at.is_not(None), s.c.is_firing | (s.c.resolved_at >= since))
        .order_by(s.c.fired_at.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(q)]


def list_endpoints(conn: Connection) -> list[dict[str, Any]]:
    """Endpoints visible to the connection, without their secrets."""
    t = notification_endpoints
    cols = [c for c in t.c if c.name not in ("secret", "previous_secret")]
    return [dict(r._mapping) for r in conn.execute(select(*cols).order_by(t.c.created_at, t.c.id))]


def set_endpoint_enabled(conn: Connection, endpoint_id: uuid.UUID, enabled: bool) -> None:
    """Enables (clearing its failure record) or disables an endpoint."""
    t = notification_endpoints
    values: dict[str, Any] = {"enabled": enabled, "updated_at": func.now()}
    if enabled:
        values.update(failing_since=None, disabled_reason=None)
    if conn.execute(update(t).where(t.c.id == endpoint_id).values(**values)).rowcount == 0:
        raise NotFoundError(f"no notification endpoint {endpoint_id}")


def delete_endpoint(conn: Connection, endpoint_id: uuid.UUID) -> None:
    """Deletes an endpoint and its deliveries."""
    t = notification_endpoints
    if conn.execute(delete(t).where(t.c.id == endpoint_id)).rowcount == 0:
        raise NotFoundError(f"no notification endpoint {endpoint_id}")


def list_silences(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Silences in force or to come."""
    t = alert_silences
    q = select(t).where(t.c.ends_at > now).order_by(t.c.ends_at)
    return [dict(r._mapping) for r in conn.execute(q)]


def delete_silence(conn: Connection, silence_id: uuid.UUID) -> None:
    """Ends a silence (deletes it)."""
    t = alert_silences
    if conn.execute(delete(t).where(t.c.id == silence_id)).rowcount == 0:
        raise NotFoundError(f"no silence {silence_id}")


def rule_status(conn: Connection) -> dict[uuid.UUID, tuple[str, int]]:
    """Per rule: its worst instance state and how many instances fire."""
    s = alert_states
    rank = func.max(
        func.array_position(
            literal(list(_STATE_ORDER), ARRAY(Text)),
            s.c.state,
        )
    )
    q = select(s.c.rule_id, rank, func.count().filter(s.c.is_firing)).group_by(s.c.rule_id)
    return {r[0]: (_STATE_ORDER[int(r[1]) - 1], int(r[2])) for r in conn.execute(q)}


#: Instance states from best to worst (as ``alerting.states.RANK``).
_STATE_ORDER = ("normal", "pending", "no_data", "error", "recovering", "alerting")

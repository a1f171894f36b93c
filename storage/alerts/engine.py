"""The alerting engine's own tables, read and written by the worker role.

Contracts:

- :func:`claim_due_rules` locks the rules it returns until the caller's transaction ends
  (``FOR UPDATE SKIP LOCKED``): two processes never get the same rule at once, and a rule
  whose evaluation rolls back is due again, so none is skipped.
- Writes are idempotent on their natural keys: one evaluation row per rule and time, one
  notification per org and dedup key, one delivery per endpoint and notification, one
  budget mark per rule, period and step.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from storage.alerts import _sql

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A rule as the engine sees it."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    type: str
    severity: str
    scope: str
    params: dict[str, Any]
    interval_s: int
    for_s: int
    keep_firing_for_s: int
    no_data_state: str
    error_state: str
    labels: dict[str, str]
    annotations: dict[str, str]
    next_eval_at: datetime | None


def claim_due_rules(conn: Connection, now: datetime, limit: int) -> list[RuleRow]:
    """Due enabled rules (``next_eval_at <= now`` or never evaluated), locked; oldest first."""
    rows = conn.execute(_sql.CLAIM_DUE_RULES, {"now": now, "limit": limit}).mappings()
    return [RuleRow(**dict(r)) for r in rows]


def set_next_eval(conn: Connection, next_at: Mapping[uuid.UUID, datetime]) -> None:
    """When each rule is due next (one pipelined batch)."""
    if next_at:
        conn.execute(_sql.SET_NEXT_EVAL, [{"id": r, "next": t} for r, t in next_at.items()])


@dataclass(frozen=True, slots=True)
class StateRow:
    """A stored instance state (columns of ``alert_states``)."""

    rule_id: uuid.UUID
    fingerprint: str
    labels: dict[str, str]
    state: str
    is_firing: bool
    active_at: datetime | None
    fired_at: datetime | None
    breach_ended_at: datetime | None
    resolved_at: datetime | None
    last_value: float | None
    missed: int
    reason: str | None


def load_states(conn: Connection, rule_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[StateRow]]:
    """The stored instances of each rule."""
    out: dict[uuid.UUID, list[StateRow]] = {r: [] for r in rule_ids}
    for row in conn.execute(_sql.SELECT_STATES, {"rule_ids": list(rule_ids)}).mappings():
        out[row["rule_id"]].append(StateRow(**dict(row)))
    return out


def save_states(
    conn: Connection, rows: Sequence[tuple[uuid.UUID, StateRow]], now: datetime
) -> None:
    """Upserts instance states ``(org_id, row)`` (one pipelined batch)."""
    values = []
    for org_id, row in rows:
        value = {"org_id": org_id, "now": now, **{k: getattr(row, k) for k in StateRow.__slots__}}
        value["labels"] = json.dumps(row.labels)
        values.append(value)
    if values:
        conn.execute(_sql.UPSERT_STATE, values)


def forget_states(conn: Connection, keys: Sequence[tuple[uuid.UUID, uuid.UUID, str]]) -> None:
    """Deletes instances ``(org_id, rule_id, fingerprint)`` that vanished and do not fire."""
    if keys:
        conn.execute(
            _sql.DELETE_STATE,
            [{"org_id": o, "rule_id": r, "fingerprint": fp} for o, r, fp in keys],
        )


@dataclass(frozen=True, slots=True)
class EvaluationRow:
    """One ``alert_evaluations`` row."""

    rule: RuleRow
    time: datetime
    state: str
    value: float | None
    details: Mapping[str, Any]


def record_evaluations(conn: Connection, rows: Sequence[EvaluationRow]) -> None:
    """``alert_evaluations`` rows (once per rule and time; one pipelined batch)."""
    if rows:
        conn.execute(
            _sql.INSERT_EVALUATION,
            [
                {
                    "org_id": e.rule.org_id,
                    "rule_id": e.rule.id,
                    "time": e.time,
                    "state": e.state,
                    "value": e.value,
                    "details": json.dumps(e.details, default=str),
                }
                for e in rows
            ],
        )


def mark_groups_changed(
    conn: Connection,
    groups: Sequence[tuple[uuid.UUID, uuid.UUID]],
    now: datetime,
    group_wait_s: float,
    group_interval_s: float,
) -> None:
    """Rules ``(org_id, rule_id)`` whose alert set changed: schedule their groups' flush
    (Alertmanager's timers); one pipelined batch."""
    if groups:
        conn.execute(
            _sql.MARK_GROUP_CHANGED,
            [
                {"org_id": o, "rule_id": r, "now": now, "group_wait": group_wait_s,
                 "group_interval": group_interval_s}
                for o, r in groups
            ],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DueGroup:
    """A notification group due to flush, with its rule's description."""

    org_id: uuid.UUID
    rule_id: uuid.UUID
    last_flush_at: datetime | None
    last_digest: str
    name: str
    severity: str
    type: str
    rule_labels: dict[str, str]
    annotations: dict[str, str]


def claim_due_groups(conn: Connection, now: datetime, limit: int) -> list[DueGroup]:
    """Groups whose flush time has come, locked for this transaction."""
    rows = conn.execute(_sql.CLAIM_DUE_GROUPS, {"now": now, "limit": limit}).mappings()
    return [DueGroup(**dict(r)) for r in rows]


def group_instances(
    conn: Connection, rule_id: uuid.UUID, since: datetime | None
) -> list[Mapping[str, Any]]:
    """Instances firing now, or resolved after ``since`` (the last flush)."""
    binds = {"rule_id": rule_id, "since": since or _EPOCH}
    return [dict(r) for r in conn.execute(_sql.SELECT_GROUP_INSTANCES, binds).mappings()]


def flush_group(
    conn: Connection,
    group: DueGroup,
    now: datetime,
    digest: str,
    next_at: datetime | None,
    *,
    notified: bool,
) -> None:
    """Records a flush (what was sent, if anything) and when the group is due again."""
    conn.execute(
        _sql.FLUSH_GROUP,
        {
            "org_id": group.org_id,
            "rule_id": group.rule_id,
            "now": now,
            "digest": digest,
            "next": next_at,
            "notified": notified,
        },
    )


def active_silences(
    conn: Connection, org_id: uuid.UUID, now: datetime
) -> list[tuple[uuid.UUID | None, dict[str, str]]]:
    """(rule or None, label matchers) of the org's silences in force at ``now``."""
    rows = conn.execute(_sql.ACTIVE_SILENCES, {"org_id": org_id, "now": now})
    return [(r.rule_id, dict(r.matchers)) for r in rows]


@dataclass(frozen=True, slots=True)
class NewNotification:
    """An inbox notification to create (idempotent on ``dedup_key``)."""

    org_id: uuid.UUID
    type: str
    severity: str
    title: str
    body: str
    rule_id: uuid.UUID | None
    dedup_key: str
    labels: Mapping[str, str]
    details: Mapping[str, Any]


def notify(conn: Connection, n: NewNotification, now: datetime) -> uuid.UUID | None:
    """Creates the inbox row and one delivery per matching endpoint; None if it existed.

    An endpoint matches when it is enabled, the severity is at least its route's
    ``min_severity`` and every label of its route's ``labels`` is equal.
    """
    values = {
        "org_id": n.org_id,
        "type": n.type,
        "severity": n.severity,
        "title": n.title,
        "body": n.body,
        "rule_id": n.rule_id,
        "dedup_key": n.dedup_key,
        "labels": json.dumps(dict(n.labels)),
        "details": json.dumps(dict(n.details), default=str),
        "now": now,
    }
    notification_id: uuid.UUID | None = conn.execute(_sql.INSERT_NOTIFICATION, values).scalar()
    if notification_id is None:
        return None
    for endpoint in conn.execute(_sql.MATCHING_ENDPOINTS, {"org_id": n.org_id}):
        if route_matches(endpoint.route, n.severity, n.labels):
            conn.execute(
                _sql.INSERT_DELIVERY,
                {
                    "org_id": n.org_id,
                    "endpoint_id": endpoint.id,
                    "notification_id": notification_id,
                    "now": now,
                },
            )
    return notification_id


_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def route_matches(route: Mapping[str, Any], severity: str, labels: Mapping[str, str]) -> bool:
    """Whether an endpoint's route takes a notification of ``severity`` and ``labels``."""
    floor = _SEVERITY_RANK.get(str(route.get("min_severity", "info")), 0)
    if _SEVERITY_RANK.get(severity, 0) < floor:
        return False
    wanted: Mapping[str, str] = route.get("labels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


def mark_budget_steps(
    conn: Connection,
    org_id: uuid.UUID,
    rule_id: uuid.UUID,
    period: str,
    steps: Iterable[str],
    now: datetime,
) -> list[str]:
    """Records budget steps reached in ``period``; returns those not recorded before."""
    new: list[str] = []
    for step in steps:
        binds = {"org_id": org_id, "rule_id": rule_id, "period": period, "step": step, "now": now}
        if conn.execute(_sql.INSERT_BUDGET_MARK, binds).scalar() is not None:
            new.append(step)
    return new


def claim_deliveries(
    conn: Connection, now: datetime, limit: int, lease_s: float
) -> list[dict[str, Any]]:
    """Due pending deliveries with their notification and endpoint, moved a lease ahead
    (committed with the caller's transaction: a sender that dies leaves them due again)."""
    claim = {"now": now, "limit": limit, "lease": lease_s}
    ids = [r.id for r in conn.execute(_sql.CLAIM_DUE_DELIVERIES, claim)]
    if not ids:
        return []
    return [dict(r) for r in conn.execute(_sql.SELECT_DELIVERY, {"ids": ids}).mappings()]


def record_attempt(
    conn: Connection,
    delivery_id: uuid.UUID,
    *,
    status: str,
    code: int | None,
    error: str | None,
    now: datetime,
    next_at: datetime | None,
) -> None:
    """Records one attempt's outcome and the next attempt time (None: no more)."""
    conn.execute(
        _sql.RECORD_ATTEMPT,
        {"id": delivery_id, "status": status, "code": code, "error": error, "now": now,
         "next": next_at},
    )  # fmt: skip


def endpoint_succeeded(conn: Connection, endpoint_id: uuid.UUID) -> None:
    """Stops an endpoint's failure clock."""
    conn.execute(_sql.ENDPOINT_OK, {"id": endpoint_id})


def endpoint_failed(conn: Connection, endpoint_id: uuid.UUID, now: datetime) -> datetime | None:
    """Starts (or keeps) an endpoint's failure clock; returns when it started failing."""
    since: datetime | None = conn.execute(
        _sql.ENDPOINT_FAILING, {"id": endpoint_id, "now": now}
    ).scalar()
    return since


def disable_endpoint(
    conn: Connection, endpoint_id: uuid.UUID, reason: str, now: datetime
) -> tuple[str, str] | None:
    """Disables an endpoint and fails its pending deliveries; (name, kind) if it was enabled."""
    row = conn.execute(
        _sql.DISABLE_ENDPOINT, {"id": endpoint_id, "reason": reason, "now": now}
    ).first()
    conn.execute(
        _sql.FAIL_PENDING_OF_ENDPOINT, {"id": endpoint_id, "reason": f"endpoint disabled: {reason}"}
    )
    return None if row is None else (row.name, row.kind)

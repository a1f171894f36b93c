"""Response and request models of the alerting routes (separate from storage rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

RULE_EXAMPLES = {
    "error rate per agent": {
        "value": {
            "name": "Error rate above 5 % per agent",
            "type": "threshold",
            "severity": "critical",
            "for_s": 300,
            "params": {
                "measure": "error_rate",
                "group_by": ["agent_id"],
                "window_s": 300,
                "op": "gt",
                "value": 0.05,
                "min_spans": 20,
            },
        }
    },
    "monthly budget": {
        "value": {
            "name": "LLM spend",
            "type": "budget",
            "params": {"period": "month", "amount_usd": 500, "ladder": [50, 80, 100]},
        }
    },
    "silent agents": {
        "value": {
            "name": "Agent silent 10 min",
            "type": "heartbeat",
            "params": {"target": "agent", "silent_for_s": 600},
        }
    },
    "p95 anomaly": {
        "value": {
            "name": "p95 latency anomaly",
            "type": "anomaly",
            "params": {"measure": "p95_latency_ms", "seasonality": "daily", "z": 3},
        }
    },
}

ENDPOINT_EXAMPLES = {
    "webhook": {
        "value": {"kind": "webhook", "name": "ops", "url": "https://hooks.example.com/aeos"}
    },
    "webhook (Alertmanager format)": {
        "value": {
            "kind": "webhook",
            "url": "https://hooks.example.com/am",
            "format": "alertmanager",
        }
    },
    "slack": {"value": {"kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/XXXX"}},
    "email": {
        "value": {
            "kind": "email",
            "email": "oncall@example.com",
            "route": {"min_severity": "warning"},
        }
    },
    "alertmanager": {"value": {"kind": "alertmanager", "url": "https://alertmanager.example.com"}},
}


class RuleBody(BaseModel):
    """An alert rule as written (``params`` depend on ``type``; see the examples)."""

    name: str
    type: Literal["threshold", "budget", "heartbeat", "anomaly"]
    params: dict[str, Any]
    severity: Literal["info", "warning", "critical"] = "warning"
    enabled: bool = True
    scope: Literal["org", "platform"] = "org"
    interval_s: int = 60
    for_s: int = 0
    keep_firing_for_s: int = 0
    no_data_state: Literal["no_data", "alerting", "normal", "keep_last"] = "no_data"
    error_state: Literal["error", "alerting", "normal", "keep_last"] = "error"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class RulePublic(RuleBody):
    """A stored rule with its identity and current state."""

    id: uuid.UUID
    org_id: uuid.UUID
    created_at: datetime
    updated_at: datetime | None
    state: str | None = Field(None, description="Worst instance state (null: never evaluated).")
    firing: int = 0


class RulesPublic(BaseModel):
    """Rules of an org."""

    data: list[RulePublic]


class InstancePublic(BaseModel):
    """One alert instance (rule + label set)."""

    fingerprint: str
    labels: dict[str, str]
    state: str
    is_firing: bool
    fired_at: datetime | None
    resolved_at: datetime | None
    last_value: float | None
    last_evaluated_at: datetime | None = None
    reason: str | None


class EvaluationPublic(BaseModel):
    """One evaluation of a rule."""

    time: datetime
    state: str
    value: float | None
    details: dict[str, Any]


class HistoryPublic(BaseModel):
    """A rule's evaluations, newest first, and its instances now."""

    data: list[EvaluationPublic]
    instances: list[InstancePublic]


class SilenceBody(BaseModel):
    """Mute a rule (or every rule) for instances whose labels match, until ``ends_at``."""

    rule_id: uuid.UUID | None = None
    matchers: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime
    comment: str = ""


class SilencePublic(SilenceBody):
    """A silence."""

    id: uuid.UUID
    starts_at: datetime
    created_by: str


class EndpointBody(BaseModel):
    """A notification endpoint as written."""

    kind: Literal["webhook", "slack", "email", "alertmanager"]
    name: str = ""
    url: str | None = None
    email: str | None = None
    format: Literal["aeos", "alertmanager"] = "aeos"
    enabled: bool = True
    route: dict[str, Any] = Field(default_factory=dict)


class EndpointPublic(EndpointBody):
    """An endpoint (its secret is never shown again after creation or rotation)."""

    id: uuid.UUID
    created_at: datetime
    failing_since: datetime | None
    disabled_reason: str | None
    previous_secret_until: datetime | None


class EndpointCreated(EndpointPublic):
    """A new endpoint; ``secret`` (webhooks) is shown this once."""

    secret: str | None


class SecretPublic(BaseModel):
    """A rotated webhook secret (shown once); the old one signs too until ``previous_until``."""

    secret: str
    previous_until: datetime


class TestQueued(BaseModel):
    """A queued test delivery."""

    webhook_id: str


class NotificationPublic(BaseModel):
    """One inbox notification."""

    id: uuid.UUID
    created_at: datetime
    type: str
    severity: str
    title: str
    body: str | None
    rule_id: uuid.UUID | None
    labels: dict[str, str]
    details: dict[str, Any]
    read_at: datetime | None


class NotificationsPublic(BaseModel):
    """The inbox, newest first, with the unread count."""

    data: list[NotificationPublic]
    unread_count: int


class MarkedRead(BaseModel):
    """How many notifications were marked read."""

    marked: int


class IncidentPublic(BaseModel):
    """An alert instance firing now or resolved lately."""

    org_id: uuid.UUID
    rule_id: uuid.UUID
    rule_name: str
    type: str
    severity: str
    fingerprint: str
    labels: dict[str, str]
    state: str
    is_firing: bool
    fired_at: datetime | None
    resolved_at: datetime | None
    last_value: float | None
    reason: str | None


class IncidentsPublic(BaseModel):
    """The Anomalies & Incidents feed."""

    data: list[IncidentPublic]
    firing: int

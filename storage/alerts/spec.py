"""What an alert rule and an endpoint may say: validated specs (no I/O).

Both the API (writes) and the alerting engine (reads) use these models, so a rule that was
accepted is always one the engine can evaluate. A validation error names the field
(``params.window_s``, ``for_s``...), see :func:`validation_errors`.

Measures of threshold and anomaly rules read the rollups:

- span measures (``span_red_1m``; ``org_red_1m`` without filters or group-by;
  ``platform_red_1m`` for platform rules): ``span_count``, ``error_count``,
  ``error_rate`` (errors / spans), ``duration_avg_ms``, ``duration_max_ms``,
  ``duration_p50_ms`` / ``p95`` / ``p99`` (mergeable histograms); shorthands
  ``p95_latency_ms`` = ``duration_p95_ms``;
- metric measures (``metric_rollup_1m``, ``metric`` required): ``metric_sum``,
  ``metric_avg`` (sum / observations), ``metric_min``, ``metric_max``, ``metric_last``
  (latest value of any series of the group), ``metric_count`` (observations).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SPAN_MEASURES = (
    "span_count",
    "error_count",
    "error_rate",
    "duration_avg_ms",
    "duration_max_ms",
    "duration_p50_ms",
    "duration_p95_ms",
    "duration_p99_ms",
)
METRIC_MEASURES = (
    "metric_sum",
    "metric_avg",
    "metric_min",
    "metric_max",
    "metric_last",
    "metric_count",
)
SHORTHANDS = {"p95_latency_ms": "duration_p95_ms"}
SPAN_DIMS = ("subsystem", "service_name", "operation", "agent_id")
METRIC_DIMS = ("agent_id", "service_name")
COST_DIMS = ("provider", "model", "agent_id", "subsystem")
_DIMENSION = re.compile(r"^dimension:[A-Za-z0-9_.\-]{1,100}$")

Measure = Literal[
    "span_count",
    "error_count",
    "error_rate",
    "duration_avg_ms",
    "duration_max_ms",
    "duration_p50_ms",
    "duration_p95_ms",
    "duration_p99_ms",
    "p95_latency_ms",
    "metric_sum",
    "metric_avg",
    "metric_min",
    "metric_max",
    "metric_last",
    "metric_count",
]
Seconds = Annotated[int, Field(ge=60, le=7 * 86400)]
LabelMap = dict[
    Annotated[str, Field(min_length=1, max_length=100)], Annotated[str, Field(max_length=1000)]
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _MeasureParams(_Strict):
    measure: Measure
    metric: str | None = Field(None, min_length=1, max_length=255)
    filters: dict[str, str] = Field(default_factory=dict)
    group_by: list[str] = Field(default_factory=list, max_length=4)

    @property
    def base_measure(self) -> str:
        """The measure with shorthands resolved."""
        return SHORTHANDS.get(self.measure, self.measure)

    @property
    def is_metric(self) -> bool:
        """Whether the measure reads metric rollups."""
        return self.base_measure in METRIC_MEASURES

    @model_validator(mode="after")
    def _dims(self) -> _MeasureParams:
        if self.is_metric and not self.metric:
            raise ValueError("metric is required for a metric_* measure")
        if not self.is_metric and self.metric:
            raise ValueError("metric is only for metric_* measures")
        allowed = METRIC_DIMS if self.is_metric else SPAN_DIMS
        for name in [*self.group_by, *self.filters]:
            if name not in allowed and not (self.is_metric and _DIMENSION.match(name)):
                extra = " or dimension:<key>" if self.is_metric else ""
                raise ValueError(
                    f"unknown dimension {name!r}: use one of {', '.join(allowed)}{extra}"
                )
        return self


class ThresholdParams(_MeasureParams):
    """A measure over the last ``window_s`` compared with ``value``."""

    window_s: Seconds = 300
    op: Literal["gt", "gte", "lt", "lte"] = "gt"
    value: float
    min_spans: int = Field(0, ge=0)


class AnomalyParams(_MeasureParams):
    """Seasonal-naive forecast + z-score (see ``alerting.anomaly``)."""

    seasonality: Literal["hourly", "daily", "weekly"] = "daily"
    z: float = Field(3.0, gt=0, le=100)
    direction: Literal["above", "below", "both"] = "above"


class BudgetParams(_Strict):
    """Spend per calendar period against an amount, with a ladder and a forecast."""

    period: Literal["day", "month"] = "month"
    amount_usd: float = Field(gt=0)
    ladder: list[Annotated[int, Field(ge=1, le=1000)]] = Field(default=[50, 80, 100], min_length=1)
    forecast: bool = True
    filters: dict[str, str] = Field(default_factory=dict)
    group_by: list[str] = Field(default_factory=list, max_length=2)

    @model_validator(mode="after")
    def _dims(self) -> BudgetParams:
        for name in [*self.group_by, *self.filters]:
            if name not in COST_DIMS:
                raise ValueError(f"unknown dimension {name!r}: use one of {', '.join(COST_DIMS)}")
        if sorted(set(self.ladder)) != self.ladder:
            raise ValueError("ladder must be increasing percentages without repeats")
        return self


class HeartbeatParams(_Strict):
    """Silence of an agent, a fleet or a metric; or the share of a fleet offline."""

    target: Literal["agent", "fleet", "metric", "fleet_offline"]
    agent_id: str | None = Field(None, min_length=1)
    fleet_id: str | None = Field(None, min_length=1)
    metric: str | None = Field(None, min_length=1)
    silent_for_s: Seconds = 300
    offline_pct: float = Field(50.0, gt=0, le=100)

    @model_validator(mode="after")
    def _target(self) -> HeartbeatParams:
        if self.target == "metric" and not self.metric:
            raise ValueError("metric is required for target 'metric'")
        return self


PARAMS: dict[str, type[_Strict]] = {
    "threshold": ThresholdParams,
    "anomaly": AnomalyParams,
    "budget": BudgetParams,
    "heartbeat": HeartbeatParams,
}
RuleParams = ThresholdParams | AnomalyParams | BudgetParams | HeartbeatParams


class RuleSpec(_Strict):
    """An alert rule as written by a user (the API body, the store's columns)."""

    name: str = Field(min_length=1, max_length=200)
    type: Literal["threshold", "budget", "heartbeat", "anomaly"]
    params: dict[str, Any]
    severity: Literal["info", "warning", "critical"] = "warning"
    enabled: bool = True
    scope: Literal["org", "platform"] = "org"
    interval_s: int = Field(60, ge=10, le=86400)
    for_s: int = Field(0, ge=0, le=7 * 86400)
    keep_firing_for_s: int = Field(0, ge=0, le=7 * 86400)
    no_data_state: Literal["no_data", "alerting", "normal", "keep_last"] = "no_data"
    error_state: Literal["error", "alerting", "normal", "keep_last"] = "error"
    labels: LabelMap = Field(default_factory=dict)
    annotations: LabelMap = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params(self) -> RuleSpec:
        parsed = parse_params(self.type, self.params)
        if self.scope == "platform" and not (
            isinstance(parsed, ThresholdParams | AnomalyParams)
            and not parsed.is_metric
            and not parsed.group_by
            and not parsed.filters
        ):
            raise ValueError("platform rules take a span measure without filters or group-by")
        return self

    @property
    def parsed(self) -> RuleParams:
        """The params as the model of the rule's type."""
        return parse_params(self.type, self.params)


def parse_params(rule_type: str, params: dict[str, Any]) -> RuleParams:
    """The params of a ``rule_type`` rule, validated (errors located under ``params``)."""
    model = PARAMS[rule_type]
    try:
        return model.model_validate(params)  # type: ignore[return-value]
    except ValidationError as exc:
        raise ParamsError(exc) from None


class ParamsError(ValueError):
    """Invalid rule params; ``errors`` locate each problem under ``params``."""

    def __init__(self, exc: ValidationError) -> None:
        self.errors = [
            ("params." + ".".join(str(p) for p in e["loc"]) if e["loc"] else "params", e["msg"])
            for e in exc.errors()
        ]
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in self.errors))


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs of a spec's validation error, params located inside."""
    out: list[tuple[str, str]] = []
    for e in exc.errors():
        inner = e.get("ctx", {}).get("error")
        if isinstance(inner, ParamsError):
            out.extend(inner.errors)
        else:
            out.append((".".join(str(p) for p in e["loc"]) or "body", e["msg"]))
    return out


class EndpointSpec(_Strict):
    """A notification endpoint as written by a user."""

    kind: Literal["webhook", "slack", "email", "alertmanager"]
    name: str = Field("", max_length=200)
    url: str | None = Field(None, max_length=2000)
    email: str | None = Field(None, max_length=500)
    format: Literal["aeos", "alertmanager"] = "aeos"
    enabled: bool = True
    route: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/?#]+", url):
            raise ValueError("must be an http(s) URL with a host")
        return url

    @field_validator("email")
    @classmethod
    def _email(cls, email: str | None) -> str | None:
        if email is not None:
            for address in email.split(","):
                if not re.match(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$", address.strip()):
                    raise ValueError(f"{address.strip()!r} is not an email address")
        return email

    @model_validator(mode="after")
    def _target(self) -> EndpointSpec:
        if self.kind == "email" and not self.email:
            raise ValueError("email is required for an email endpoint")
        if self.kind != "email" and not self.url:
            raise ValueError(f"url is required for a {self.kind} endpoint")
        severity = self.route.get("min_severity")
        if severity is not None and severity not in ("info", "warning", "critical"):
            raise ValueError("route.min_severity must be info, warning or critical")
        labels = self.route.get("labels", {})
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError("route.labels must map label names to values")
        return self

"""The general metrics query."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Aggregation = Literal["count", "sum", "avg", "min", "max", "rate", "p50", "p95", "p99"]


class MeasureIn(BaseModel):
    """``aggregation`` of ``field``."""

    field: str = Field(examples=["duration_ms"])
    aggregation: Aggregation = Field(examples=["p95"])


class FilterIn(BaseModel):
    """A filter on one of the family's dimensions."""

    dim: str = Field(examples=["agent_id"])
    op: Literal["eq", "in", "not_in"] = "eq"
    values: list[str] = Field(min_length=1, max_length=500, examples=[["planner-1"]])


class QueryIn(BaseModel):
    """A metrics query: a series with ``step``, a breakdown without."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "family": "span_red",
                    "measures": [
                        {"field": "duration_ms", "aggregation": "p95"},
                        {"field": "spans", "aggregation": "rate"},
                    ],
                    "group_by": ["agent_id"],
                    "filters": [{"dim": "subsystem", "op": "in", "values": ["MOSAIC", "UCE"]}],
                    "start": "2026-11-01T00:00:00Z",
                    "end": "2026-12-01T00:00:00Z",
                    "step": "1h",
                }
            ]
        }
    )

    family: str = Field(examples=["span_red"])
    measures: list[MeasureIn] = Field(min_length=1, max_length=20)
    group_by: list[str] = Field(default=[], max_length=5)
    filters: list[FilterIn] = Field(default=[], max_length=20)
    start: str | None = Field(
        default=None, description="RFC 3339 or epoch ms (default end - 24 h)."
    )
    end: str | None = Field(default=None, description="RFC 3339 or epoch ms (default now).")
    step: str | None = Field(
        default=None,
        description="A series step (`1m`, `5m`, `1h`, `1d`, or seconds); omit for a breakdown.",
    )


class QueryOut(BaseModel):
    """The answer: rows of ``columns`` and the rollup level(s) read."""

    columns: list[str]
    rows: list[list[Any]]
    levels: list[str]
    start: datetime
    end: datetime
    step_seconds: int | None


class FamilyOut(BaseModel):
    """What a family offers: its dimensions and fields with their aggregations."""

    family: str
    dims: list[str]
    fields: dict[str, list[str]]
    levels: list[str]
    requires_filter_on: list[str]

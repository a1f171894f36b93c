"""API keys as the API shows them (never a hash; the secret only once, at creation)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

OrgKeyRole = Literal["ingest", "admin", "member"]
_EXAMPLE: JsonDict = {
    "key_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
    "org_id": "4f1c2a9e-3b7d-4e8a-9c1f-2d5e6f7a8b9c",
    "prefix": "aeos_mk_3Fh9kQ2x",
    "role": "member",
    "name": "grafana",
    "require_signature": False,
    "created_at": "2026-12-01T09:30:00Z",
    "last_used_at": "2026-12-01T10:02:11Z",
    "revoked_at": None,
}


class ApiKey(BaseModel):
    """One API key of the org."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    key_id: uuid.UUID
    org_id: uuid.UUID
    prefix: str = Field(description="The public part of the key: how to recognise it.")
    role: str = Field(description="ingest, admin or member.")
    name: str
    require_signature: bool = Field(description="Exports must carry an HMAC body signature.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Last authentication (within a minute).")
    revoked_at: datetime | None


class NewApiKey(BaseModel):
    """What to create."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "member", "name": "grafana"}]}
    )

    role: OrgKeyRole = Field(description="ingest (send telemetry), member (read), admin.")
    name: str = Field(default="", max_length=200, description="A label to recognise it by.")


class CreatedApiKey(BaseModel):
    """A new key: ``key`` is the secret, shown this once and never again."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": _EXAMPLE["key_id"],
                    "org_id": _EXAMPLE["org_id"],
                    "prefix": _EXAMPLE["prefix"],
                    "role": "member",
                    "name": "grafana",
                    "key": "aeos_mk_3Fh9kQ2x_q8Vh…",
                }
            ]
        }
    )

    key_id: uuid.UUID
    org_id: uuid.UUID
    prefix: str
    role: str
    name: str
    key: str = Field(description="The whole key. Store it now: only its hash is kept.")

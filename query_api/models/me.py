"""Who the caller is."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Me(BaseModel):
    """The authenticated caller, as the API sees it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "api_key",
                    "role": "member",
                    "org_id": "4f1c2a9e-3b7d-4e8a-9c1f-2d5e6f7a8b9c",
                    "key_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
                    "user_id": None,
                    "subject": "aeos_mk_3Fh9kQ2x",
                    "is_staff": False,
                    "can_write_org": False,
                }
            ]
        }
    )

    kind: Literal["api_key", "user"]
    role: Literal["admin", "member", "alias_admin", "alias_support"]
    org_id: uuid.UUID | None = Field(description="The org of the credential (staff: home org).")
    key_id: uuid.UUID | None
    user_id: uuid.UUID | None
    subject: str = Field(description="The key prefix, or the person's email.")
    is_staff: bool
    can_write_org: bool

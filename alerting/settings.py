"""Alerting settings (environment variables ``AEOS_ALERTING_*``), validated at start."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DISABLE_AFTER_DAYS = 5.0  # Svix disables an endpoint failing for 5 days
DEFAULT_HTTP_TIMEOUT_S = 15.0  # Standard Webhooks: 15-30 s


class AlertingSettings(BaseSettings):
    """Where links point, what outbound requests may reach, and how email is sent."""

    model_config = SettingsConfigDict(env_prefix="AEOS_ALERTING_", extra="ignore")

    #: Private, loopback and link-local targets (on-premises installs, tests).
    allow_private_targets: bool = False
    #: The app's public URL: links in notifications point below it.
    base_url: str = "http://localhost:8000"
    http_timeout_s: Annotated[float, Field(gt=0, le=60)] = DEFAULT_HTTP_TIMEOUT_S
    disable_after_days: Annotated[float, Field(gt=0)] = DEFAULT_DISABLE_AFTER_DAYS
    smtp_host: str | None = None
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "AEOS Alerts <alerts@localhost>"

"""What the transports share within one receiver process."""

from __future__ import annotations

from dataclasses import dataclass

from otlp_receiver._auth import Authenticator
from otlp_receiver._handlers import Writer
from otlp_receiver._translate import Limits


@dataclass(frozen=True, slots=True)
class ReceiverContext:
    """The authenticator, the writer and the item limits of one receiver process."""

    auth: Authenticator
    writer: Writer
    limits: Limits
    max_request_bytes: int

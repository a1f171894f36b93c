"""What the transports share within one receiver process."""

from __future__ import annotations

from dataclasses import dataclass, field

from otlp_receiver._auth import Authenticator
from otlp_receiver._handlers import Writer
from otlp_receiver._translate import Limits


@dataclass(slots=True)
class Admission:
    """How many export requests this process is working on, and how many it may.

    Requests beyond the limit are refused at once with "retry later" instead of waiting
    in memory for a core: that is what keeps a process's memory bounded under overload
    (the writer's queue bound only covers what is already translated).
    """

    limit: int
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class ReceiverContext:
    """The authenticator, the writer, the item limits and admission of one process."""

    auth: Authenticator
    writer: Writer
    limits: Limits
    max_request_bytes: int
    admission: Admission = field(default_factory=lambda: Admission(64))

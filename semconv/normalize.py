"""Receiver-side normalisation: attribute aliases, value coercion, subsystem, heartbeats.

The ingest code calls these on decoded OTLP attributes (``Mapping[str, object]`` of str,
bool, int, float, bytes, lists and dicts). Standard library only, pure, never raises on
bad input: a value that cannot be used is treated as absent.

Alias precedence (``GEN_AI_ALIASES``): for each field the names are tried best first and
the first *usable* value wins. The order is: the current OpenTelemetry GenAI name, its
deprecated OpenTelemetry name, names that instrumentations used before the conventions
had one (OpenLLMetry's ``gen_ai.usage.cache_read_input_tokens``), and the OpenInference
names (``llm.*``) last. An unusable value (wrong type, negative count) does not stop the
search, so a broken current attribute falls back to a sound deprecated one.

Value rules: counts are non-negative integers below 2**63; ints, integral floats
(``12.0``) and ASCII decimal strings (``"12"``, some SDKs stringify) are accepted;
booleans, negatives, fractions, NaN and other strings are not. Amounts (costs) are
finite non-negative numbers, decimal strings accepted. Text is a non-empty string,
surrounding whitespace removed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from semconv.attributes import gen_ai
from semconv.attributes.aeos import AEOS_COST_USD, AEOS_SUBSYSTEM, AeosSubsystemValues
from semconv.attributes.damn import DAMN_AGENT_STATUS, DamnAgentStatusValues
from semconv.events.damn import DAMN_AGENT_HEARTBEAT

__all__ = [
    "EVENT_NAME_ATTRIBUTE",
    "GEN_AI_ALIASES",
    "MAX_COUNT",
    "GenAiUsage",
    "as_amount",
    "as_count",
    "as_text",
    "gen_ai_usage",
    "heartbeat_status",
    "subsystem_of",
]


MAX_COUNT: Final = 2**63 - 1
"""Largest count accepted (it must fit a PostgreSQL ``bigint``)."""

EVENT_NAME_ATTRIBUTE: Final = "event.name"
"""The attribute that named events before ``LogRecord.event_name`` existed (deprecated)."""

GEN_AI_ALIASES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "provider": (
            gen_ai.GEN_AI_PROVIDER_NAME,
            gen_ai.GEN_AI_SYSTEM,
            "llm.provider",
            "llm.system",
        ),
        "request_model": (gen_ai.GEN_AI_REQUEST_MODEL, "llm.model_name"),
        "response_model": (gen_ai.GEN_AI_RESPONSE_MODEL,),
        "operation": (gen_ai.GEN_AI_OPERATION_NAME,),
        "input_tokens": (
            gen_ai.GEN_AI_USAGE_INPUT_TOKENS,
            gen_ai.GEN_AI_USAGE_PROMPT_TOKENS,
            "llm.token_count.prompt",
        ),
        "output_tokens": (
            gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS,
            gen_ai.GEN_AI_USAGE_COMPLETION_TOKENS,
            "llm.token_count.completion",
        ),
        "cache_read_tokens": (
            gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
        "cache_creation_tokens": (
            gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ),
        "reasoning_tokens": (
            gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
            "llm.token_count.completion_details.reasoning",
        ),
        "explicit_cost_usd": (AEOS_COST_USD,),
    }
)
"""``GenAiUsage`` field -> attribute names, best first (see the module docstring)."""

_DIGITS = re.compile(r"[0-9]{1,19}")
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Inference order: the leaf subsystems first, because mosaic.* ids (task run, plan) are
# often copied onto child spans for correlation, while uce.* and damn.* attributes
# describe the operation itself.
_INFERENCE: Final = (
    ("uce.", AeosSubsystemValues.UCE),
    ("damn.", AeosSubsystemValues.DAMN),
    ("mosaic.", AeosSubsystemValues.MOSAIC),
)
_SUBSYSTEMS: Final = frozenset(v.value for v in AeosSubsystemValues)
_STATUSES: Final = frozenset(v.value for v in DamnAgentStatusValues)


@dataclass(frozen=True, slots=True)
class GenAiUsage:
    """The GenAI call described by a span's attributes, normalised.

    Attributes:
        provider: ``gen_ai.provider.name`` (or a fallback), as sent.
        request_model: The model asked for.
        response_model: The model that answered (more precise; preferred for pricing).
        operation: ``gen_ai.operation.name``, e.g. ``chat``.
        input_tokens: All input tokens, *including* cache reads and cache creations, as the
            GenAI conventions specify (``gen_ai.usage.input_tokens`` "SHOULD include all
            types of input tokens, including cached tokens"). Pricing must subtract the
            cached parts before applying the uncached input price; a sender that reports
            them separately (Anthropic's API does) shows up as cache counts exceeding this.
        output_tokens: All output tokens, reasoning tokens included.
        cache_read_tokens: Input tokens served from the provider's cache (part of input).
        cache_creation_tokens: Input tokens written to the provider's cache (part of input).
        reasoning_tokens: Output tokens spent on reasoning (part of output).
        explicit_cost_usd: ``aeos.cost.usd``: a cost that overrides the price table.
    """

    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    operation: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    explicit_cost_usd: float | None = None

    @property
    def model(self) -> str | None:
        """The model to price: the response model, else the request model."""
        return self.response_model or self.request_model

    @property
    def has_usage(self) -> bool:
        """Whether there is anything to cost: a token count or an explicit cost."""
        return not (  # no generator: this runs for every span with gen_ai attributes
            self.input_tokens is None
            and self.output_tokens is None
            and self.cache_read_tokens is None
            and self.cache_creation_tokens is None
            and self.reasoning_tokens is None
            and self.explicit_cost_usd is None
        )


_EMPTY: Final = GenAiUsage()


def as_count(value: object) -> int | None:
    """``value`` as a token (or other) count, or None if it is not a usable one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        count = int(value.strip())
    else:
        return None
    return count if 0 <= count <= MAX_COUNT else None


def as_amount(value: object) -> float | None:
    """``value`` as a finite non-negative amount (a cost), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        amount = float(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        amount = float(value.strip())
    else:
        return None
    return amount if math.isfinite(amount) and amount >= 0 else None


def as_text(value: object) -> str | None:
    """``value`` as a non-empty string without surrounding whitespace, or None."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


_PARSERS: Final[Mapping[str, Callable[[object], object]]] = MappingProxyType(
    {
        "provider": as_text,
        "request_model": as_text,
        "response_model": as_text,
        "operation": as_text,
        "explicit_cost_usd": as_amount,
    }
)
#: (field, its names best first, its parser), and every name any field reads.
_FIELDS: Final = tuple(
    (field, names, _PARSERS.get(field, as_count)) for field, names in GEN_AI_ALIASES.items()
)
_ALL_NAMES: Final = frozenset(name for names in GEN_AI_ALIASES.values() for name in names)


def gen_ai_usage(attrs: Mapping[str, object]) -> GenAiUsage | None:
    """The GenAI call described by ``attrs`` (a span's attributes), or None.

    Current names win over deprecated ones, which win over OpenInference ones; unusable
    values are skipped (see the module docstring). ``input_tokens`` includes cached
    tokens (see ``GenAiUsage``).

    Args:
        attrs: The span's attributes.

    Returns:
        The normalised usage, or None when no attribute of ``GEN_AI_ALIASES`` has a usable
        value. Check ``has_usage`` before pricing: a tool-call span has an operation but
        no tokens.
    """
    # One set operation finds the names present (a span carries a few of the ~25), so
    # only those are looked up: this runs for every LLM span.
    present = _ALL_NAMES.intersection(attrs)
    if not present:
        return None
    found: dict[str, object] = {}
    for field, names, parse in _FIELDS:
        for name in names:
            if name in present:
                value = parse(attrs[name])
                if value is not None:
                    found[field] = value
                    break
    return GenAiUsage(**found) if found else None  # type: ignore[arg-type]


def _declared_subsystem(attrs: Mapping[str, object]) -> str | None:
    value = as_text(attrs.get(AEOS_SUBSYSTEM))
    value = value.upper() if value else None
    return value if value in _SUBSYSTEMS else None


def _inferred_subsystem(attrs: Mapping[str, object]) -> str | None:
    for prefix, subsystem in _INFERENCE:
        if any(key.startswith(prefix) for key in attrs):
            return subsystem.value
    return None


def subsystem_of(
    resource_attrs: Mapping[str, object], span_attrs: Mapping[str, object] | None = None
) -> str:
    """The subsystem (MOSAIC, DAMN, UCE or SYSTEM) a span, event or metric point belongs to.

    Order: ``aeos.subsystem`` on the span, then on the resource (case-insensitive; unknown
    values are ignored); else inferred from the namespaces present, span first, in the
    order uce.*, damn.*, mosaic.* (leaf subsystems first: mosaic ids are often copied onto
    child spans for correlation); else SYSTEM.

    Args:
        resource_attrs: The resource's attributes.
        span_attrs: The span's (or log record's, or data point's) attributes, if any.
    """
    scopes = (span_attrs or {}, resource_attrs)
    for attrs in scopes:
        declared = _declared_subsystem(attrs)
        if declared:
            return declared
    for attrs in scopes:
        inferred = _inferred_subsystem(attrs)
        if inferred:
            return inferred
    return AeosSubsystemValues.SYSTEM.value


def heartbeat_status(event_name: str | None, attrs: Mapping[str, object]) -> str | None:
    """The agent status a heartbeat reports, or None if the record is not a heartbeat.

    A log record or span event is a heartbeat when its event name (``LogRecord.event_name``
    or a span event's name) is ``damn.agent.heartbeat``, or, for SDKs that predate that
    field, when the name is empty and the ``event.name`` attribute says so.

    Args:
        event_name: The record's event name (a span event's name), possibly empty.
        attrs: The record's attributes.

    Returns:
        ``damn.agent.status`` (lower-cased) when it is a known status; ``online`` when it
        is missing or unknown, since a heartbeat that arrives shows the agent is alive.
    """
    name = event_name or as_text(attrs.get(EVENT_NAME_ATTRIBUTE))
    if name != DAMN_AGENT_HEARTBEAT:
        return None
    status = as_text(attrs.get(DAMN_AGENT_STATUS))
    status = status.lower() if status else None
    return status if status in _STATUSES else DamnAgentStatusValues.ONLINE.value

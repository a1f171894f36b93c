"""Bounds of every mapped value that goes into an index or a typed column.

A value outside its bound rejects its item (partial success, with the reason) here, in
translation, rather than reaching the database, which would refuse the whole commit.

Lengths (UTF-8 bytes). PostgreSQL refuses a btree entry over about 2,700 bytes (a third
of a page), and several mapped texts share one index entry (``span_red``'s key holds the
subsystem, the service, the span name and the agent), so:

- names (span, span event, log event, metric): ``Limits.max_name_bytes`` (1,024);
- identifiers, ``MAX_ID_BYTES`` (256): ``service.name``, the agent id (``aeos.agent.id``,
  ``service.instance.id``), ``aeos.agent.name``, ``aeos.fleet.id``, ``service.version``,
  ``mosaic.task_run.id``, ``mosaic.task.id``, ``uce.operation.name``,
  ``mosaic.routing.route``, ``mosaic.routing.outcome``, ``mosaic.handoff.from_agent``,
  ``mosaic.handoff.to_agent``, the gen_ai provider, models and operation, a metric's unit.

The widest index entry is then 1,024 + 3 x 256 bytes plus fixed-size columns, well below
the btree limit whatever the characters.

Numbers:

- token counts of an LLM call (input, output, cache read, cache creation, reasoning):
  0 .. ``MAX_TOKENS`` (10^10): a priced call then costs less than ``numeric(20,10)``
  holds (10^10 USD) at any price below $250,000 per million tokens, and a daily sum of
  them cannot reach 2^63 - 1 before 9 x 10^8 calls of one model and agent;
- ``aeos.cost.usd``: 0 .. ``MAX_COST_USD`` (10^6) per call (``numeric(20,10)``);
- ``uce.context.size_tokens``: 0 .. ``MAX_TOKENS``;
- metric counts (histogram, exponential histogram and summary ``count``, ``zero_count``
  and every bucket count): 0 .. ``MAX_COUNT`` (2^53, exact as a double);
- metric doubles that rollups sum (``value``, ``sum``, ``min``, ``max``): finite values
  of magnitude up to ``MAX_MAGNITUDE`` (10^290), so a sum of fewer than 10^18 of them is
  finite (rollup sums are computed in double precision and cannot overflow); NaN and
  the infinities are kept as they are (PostgreSQL adds them without error).

Times are bounded elsewhere (the int64 nanosecond range, beyond 2262 rejected).
"""

from __future__ import annotations

from typing import Any

from otlp_receiver._translate._common import MAX_ID_BYTES, Rejected, check_id

__all__ = ["MAX_ID_BYTES", "check_id"]  # defined with the resource checks in _common

MAX_TOKENS = 10**10
MAX_COST_USD = 10**6
MAX_COUNT = 2**53
MAX_MAGNITUDE = 1e290

#: Span attributes that become index keys (rollup dimensions) or typed columns.
SPAN_ID_ATTRIBUTES = (
    "mosaic.task_run.id",
    "mosaic.task.id",
    "uce.operation.name",
    "mosaic.routing.route",
    "mosaic.routing.outcome",
    "mosaic.handoff.from_agent",
    "mosaic.handoff.to_agent",
)
CONTEXT_SIZE = "uce.context.size_tokens"
SPAN_BOUNDED_KEYS = frozenset((*SPAN_ID_ATTRIBUTES, CONTEXT_SIZE))


def check_span_attributes(attrs: dict[str, Any]) -> None:
    """Bounds of the mapped span attributes (call only when one of them is present)."""
    for key in SPAN_ID_ATTRIBUTES:
        value = attrs.get(key)
        if isinstance(value, str):
            check_id(value, f"attribute {key!r}")
    size: Any = attrs.get(CONTEXT_SIZE)
    numeric = isinstance(size, int | float) and not isinstance(size, bool)
    if numeric and not 0 <= size <= MAX_TOKENS:  # NaN is not within either
        raise Rejected(f"attribute {CONTEXT_SIZE!r} must be within 0..{MAX_TOKENS}")


def check_usage(usage: Any) -> None:
    """Bounds of a ``semconv.normalize.GenAiUsage`` (tokens, cost, names)."""
    for field in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
                  "reasoning_tokens"):  # fmt: skip
        count = getattr(usage, field)
        if count is not None and count > MAX_TOKENS:
            raise Rejected(f"gen_ai {field} is more than {MAX_TOKENS}")
    cost = usage.explicit_cost_usd
    if cost is not None and cost > MAX_COST_USD:
        raise Rejected(f"aeos.cost.usd is more than {MAX_COST_USD}")
    check_id(usage.provider, "gen_ai provider")
    check_id(usage.request_model, "gen_ai.request.model")
    check_id(usage.response_model, "gen_ai.response.model")
    check_id(usage.operation, "gen_ai.operation.name")


def check_count(value: int, what: str = "count") -> int:
    """``value``, or :class:`Rejected` if it is over ``MAX_COUNT``."""
    if value > MAX_COUNT:
        raise Rejected(f"{what} is out of range (more than 2^53)")
    return value


def check_magnitude(value: float, what: str) -> float:
    """``value``, or :class:`Rejected` if it is finite and beyond ``MAX_MAGNITUDE``."""
    if (value > MAX_MAGNITUDE or value < -MAX_MAGNITUDE) and value - value == 0.0:
        raise Rejected(f"{what} is out of range (magnitude over {MAX_MAGNITUDE:g})")
    return value

"""Argument checks for ``semconv.helpers``: wrong types raise TypeError, bad values ValueError.

The helpers run in agent code, so a call that breaks the conventions fails at the call
site, where it is easy to fix, instead of being dropped silently by the backend.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TypeVar

_E = TypeVar("_E", bound=StrEnum)


def text(name: str, value: str) -> str:
    """``value``, a non-blank string."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return str(value)


def member(values: type[_E], value: str) -> str:
    """The plain-string value of the member of ``values`` equal to ``value``."""
    try:
        return values(value).value
    except ValueError:
        allowed = ", ".join(v.value for v in values)
        raise ValueError(f"{value!r} is not one of {allowed}") from None


def count(name: str, value: int | None) -> int | None:
    """``value``, a non-negative int (not a bool), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def number(name: str, value: float | None, *, positive: bool = False) -> float | None:
    """``value`` as a finite float, non-negative (or positive), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    low_ok = value > 0 if positive else value >= 0
    if not (math.isfinite(value) and low_ok):
        sign = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be finite and {sign}, got {value}")
    return float(value)


def usage_totals(
    input_tokens: int,
    output_tokens: int,
    cached: tuple[int | None, int | None],
    reasoning: int | None,
) -> None:
    """Checks that the totals include their parts, as the GenAI conventions define them."""
    if sum(c or 0 for c in cached) > input_tokens:
        raise ValueError(
            "input_tokens must include cache_read_tokens and cache_creation_tokens "
            "(GenAI conventions); pass the uncached input tokens plus both"
        )
    if (reasoning or 0) > output_tokens:
        raise ValueError("output_tokens must include reasoning_tokens (GenAI conventions)")

# generated from semconv/model by semconv/_generate.py, do not edit
"""Attributes of the `uce` namespace.

UCE context engine: contexts, context operations, the context cache and retrieval.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

UCE_CACHE_HIT: Final = "uce.cache.hit"
"""Whether the operation was served from the context cache.

Type: boolean. Stability: development.
"""

UCE_CONTEXT_ID: Final = "uce.context.id"
"""Identifier of a context held by the context engine.

Type: string. Stability: development. Examples: `"ctx-9b12f0"`.
"""

UCE_CONTEXT_SIZE_BYTES: Final = "uce.context.size_bytes"
"""Size of the context in bytes after the operation.

Type: int. Stability: development. Examples: `51200`.
"""

UCE_CONTEXT_SIZE_TOKENS: Final = "uce.context.size_tokens"
"""Size of the context in tokens after the operation.

Type: int. Stability: development. Examples: `12800`.
"""

UCE_OPERATION_NAME: Final = "uce.operation.name"
"""The context operation performed.

Named operation.name, like gen_ai.operation.name and db.operation.name, so that the uce.operation
namespace stays free for further operation attributes.

Type: enum. Stability: development. Examples: `"retrieve"`. Values: UceOperationNameValues.
"""

UCE_RETRIEVAL_DOCUMENTS: Final = "uce.retrieval.documents"
"""Number of documents a retrieve operation returned.

Type: int. Stability: development. Examples: `8`.
"""


class UceOperationNameValues(StrEnum):
    """Values of `uce.operation.name`."""

    READ = "read"
    """Read a context."""

    WRITE = "write"
    """Write to or create a context."""

    EVICT = "evict"
    """Remove a context or part of it from the cache."""

    RETRIEVE = "retrieve"
    """Retrieve documents relevant to a query into a context."""

    SUMMARIZE = "summarize"
    """Condense a context (usually with an LLM) to reduce its size."""

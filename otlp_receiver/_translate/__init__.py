"""OTLP → storage rows: pure translation (no I/O), one module per signal.

Each ``translate_*`` takes a decoded export request, the org of its ingest key and the
per-item :class:`Limits`, and returns a :class:`Translation`: the rows of a
``storage.ingest.rows.Batch`` plus the count of rejected items and why (for OTLP partial
success). A bad item never fails the request; it is rejected on its own.
"""

from __future__ import annotations

from otlp_receiver._translate._common import DEFAULT_LIMITS, Limits, Translation
from otlp_receiver._translate.logs import translate_logs
from otlp_receiver._translate.metrics import translate_metrics
from otlp_receiver._translate.traces import translate_traces

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "Translation",
    "translate_logs",
    "translate_metrics",
    "translate_traces",
]

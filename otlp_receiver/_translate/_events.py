"""What log records and span events share: severity and event ids.

Heartbeats are recognised by ``semconv.normalize.heartbeat_status``: an event named
``damn.agent.heartbeat`` (``LogRecord.event_name``, a span event's name, or the older
``event.name`` attribute); its ``damn.agent.status`` is the status, online when missing or
unknown (semconv ``damn`` registry).
"""

from __future__ import annotations

from otlp_receiver._translate._common import digest16

# OTLP SeverityNumber ranges (logs data model, "Field: SeverityNumber"): 1-4 TRACE,
# 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL. We keep no trace level.
_BY_NUMBER: tuple[str, ...] = ("info",) + ("debug",) * 8 + ("info",) * 4 + ("warn",) * 4
_BY_NUMBER += ("error",) * 4 + ("fatal",) * 4
# severity_text spellings of common logging libraries, for records without a number;
# each maps to our level and the first SeverityNumber of its range.
_BY_TEXT = {
    **dict.fromkeys(("trace", "finest", "finer", "fine", "verbose"), ("debug", 1)),
    **dict.fromkeys(("debug", "dbg"), ("debug", 5)),
    **dict.fromkeys(("info", "information", "informational", "notice", "config"), ("info", 9)),
    **dict.fromkeys(("warn", "warning"), ("warn", 13)),
    **dict.fromkeys(("error", "err", "severe"), ("error", 17)),
    **dict.fromkeys(("fatal", "critical", "crit", "alert", "emerg", "emergency"), ("fatal", 21)),
    **dict.fromkeys(("panic",), ("fatal", 21)),
}  # fmt: skip
SPAN_EVENT_SEVERITY = ("info", 9)
EXCEPTION_SEVERITY = ("error", 17)


def severity_of(number: int, text: str) -> tuple[str, int]:
    """Our severity level and the SeverityNumber to store.

    A number in 1..24 decides; otherwise (0, or out of range) a recognised
    ``severity_text`` gives the level and the first number of its range; else info/0.
    """
    if 0 < number < 25:
        return _BY_NUMBER[number], number
    if text:
        return _BY_TEXT.get(text.strip().lower(), ("info", 0))
    return "info", 0


def event_id(*parts: bytes) -> bytes:
    """The 16-byte content id of an event (a retried export yields the same id)."""
    return digest16(*parts)

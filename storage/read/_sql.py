"""Every runtime SQL statement of the read side, by name (SQLAlchemy ``:name`` binds)."""

from __future__ import annotations

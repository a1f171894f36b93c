"""Alerting storage: rule and endpoint specs, measure readers on the rollups, the engine's
state tables and the configuration readers/writers (every statement in ``_sql``)."""

from __future__ import annotations

from storage.alerts import engine, measures, rules, spec

__all__ = ["engine", "measures", "rules", "spec"]

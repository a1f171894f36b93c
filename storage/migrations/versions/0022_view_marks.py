"""The folded rollup views read their watermark through a stable function (PostgreSQL engine).

0021's views compared ``bucket`` with a scalar subquery on ``rollup_folds``. The planner
cannot see into a subquery when it estimates: on 30 days of bench data it expected 25,749
rows from the live 1 min branch of a 90-day read that returned 50, and 6 rows from the
1 day store that returned 1,200, and it chose parallel plans. `bench/dashboards.py` read
the slowest panels 2-4 times slower than before 0021 (``storage.ingest.folds`` explains
the fix). Now ``aeos_folded_until(relation)`` is a STABLE function. The planner evaluates
it when it estimates, and executes it once per scan.

- PostgreSQL engine: the function is created, and each folded view is replaced by the same
  view with the same columns, reading the function. ``CREATE OR REPLACE VIEW`` keeps the
  views' grants, comments and the views that read them.
- TimescaleDB engine: nothing changes. Nothing there is folded.

``0022_view_marks.json`` freezes the rollup declarations as of this revision.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 18:40:00
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_DDL: dict[str, Any] = json.loads(Path(__file__).with_suffix(".json").read_text("utf-8"))


def upgrade() -> None:
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine == "timescale":
        return
    for statement in _DDL["postgres"]:
        if statement.startswith("CREATE OR REPLACE FUNCTION aeos_folded_until"):
            op.execute(statement)
    # In any order: each view already exists, and is replaced with the same columns.
    for statement in _DDL["postgres"]:
        if statement.startswith("CREATE VIEW "):
            op.execute("CREATE OR REPLACE VIEW " + statement.removeprefix("CREATE VIEW "))


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")

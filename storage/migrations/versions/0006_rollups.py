"""Rollups at 1 minute, 1 hour and 1 day on either engine.

Replaces the rollup shapes of 0001 (never written to) with the families declared in
``storage.schema._rollups``: span RED per org/subsystem/service/operation/agent, per org
and for all orgs; UCE operations, MOSAIC routes and handoffs, DAMN heartbeats; OTLP
metric series; daily LLM cost. Creates the ``aeos_hist_*`` functions (mergeable
histograms, ``storage.hist``) first, because the rollups use them.

- PostgreSQL engine: plain tables (p-columns are generated from the histograms), row-level
  security like every tenant table, written by the ingest role.
- TimescaleDB engine: hierarchical continuous aggregates with refresh and columnstore
  policies; raw hypertables get columnstore policies (segment by ``org_id``).

On both, tenants read ``tenant.<rollup>`` (a security-barrier view filtered by
``aeos_current_org()``) and have no privilege on the relation itself; ``platform_red_*``
(all orgs together) is for staff and support only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 17:00:00
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OLD_SHAPES = (
    "span_red_1m",
    "span_red_1h",
    "span_red_1d",
    "metric_rollup_1m",
    "metric_rollup_1h",
    "metric_rollup_1d",
    "cost_daily",
)
_READERS = "aeos_staff, aeos_support, aeos_worker"
# The DDL as of this revision, generated from the declarations by
# ``storage.rollups.declared_ddl()``; a test fails when the declarations drift from it.
_DDL: dict[str, Any] = json.loads(Path(__file__).with_suffix(".json").read_text("utf-8"))
_RELATIONS: dict[str, dict[str, Any]] = _DDL["relations"]
_HYPERTABLES = ("spans", "events", "metric_points", "cost_line_items", "alert_evaluations")


def _postgres() -> None:
    for statement in _DDL["postgres"]:
        op.execute(statement)
    for name, relation in _RELATIONS.items():
        op.execute(
            f"COMMENT ON INDEX pk_{name} IS 'serves: rollup key (upsert at ingest) and "
            "time-window reads'"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {name} TO aeos_ingest")
        op.execute(f"GRANT DELETE ON {name} TO aeos_worker")
        if relation["per_org"]:
            op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY service_all_orgs ON {name} FOR ALL TO aeos_ingest, aeos_worker, "
                "aeos_staff USING (true) WITH CHECK (true)"
            )
            op.execute(
                f"CREATE POLICY support_read ON {name} FOR SELECT TO aeos_support USING (true)"
            )


def _timescale() -> None:
    # TimescaleDB refuses continuous aggregates and the columnstore on hypertables with
    # row security. On this engine tenants already have no privilege on the hypertables
    # (chunks inherit grants, not policies) and read tenant.<table> views, so row
    # security there was a second lock on a door tenants cannot reach; it goes.
    for hypertable in _HYPERTABLES:
        op.execute(f"ALTER TABLE {hypertable} DISABLE ROW LEVEL SECURITY")
    for statement in _DDL["timescale"]:
        op.execute(statement)
    for name, relation in _RELATIONS.items():
        comment = (relation["comment"] or "").replace("'", "''")
        op.execute(f"COMMENT ON VIEW {name} IS '{comment}'")
    # Retention deletes one org's old rows from the materialization hypertables.
    op.execute(
        """
        DO $$ DECLARE r record; BEGIN
          FOR r IN SELECT materialization_hypertable_schema AS s,
                          materialization_hypertable_name AS n
                     FROM timescaledb_information.continuous_aggregates LOOP
            EXECUTE format('GRANT SELECT, DELETE ON %I.%I TO aeos_worker', r.s, r.n);
          END LOOP;
        END $$
        """
    )


def upgrade() -> None:
    op.execute(_DDL["functions"])
    for name in _OLD_SHAPES:
        op.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine == "timescale":
        _timescale()
    else:
        _postgres()
    for name, relation in _RELATIONS.items():
        op.execute(f"GRANT SELECT ON {name} TO {_READERS}")
        op.execute(f"REVOKE ALL ON {name} FROM aeos_tenant")
        if relation["per_org"]:
            op.execute(
                f"CREATE VIEW tenant.{name} WITH (security_barrier) AS "
                f"SELECT * FROM public.{name} WHERE org_id = (SELECT aeos_current_org())"
            )
            op.execute(f"GRANT SELECT ON tenant.{name} TO aeos_tenant")


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")

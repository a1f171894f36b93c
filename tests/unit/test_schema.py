"""Invariants of the metadata that the migrations and tenancy rely on."""

from __future__ import annotations

from storage.schema import PARTITIONED, TENANT_TABLES, metadata

# Indexes that do not lead with org_id, and why.
CROSS_ORG_INDEXES = {
    "ix_webhook_deliveries_due",  # the delivery worker scans all orgs
    "ix_traces_unsampled_end",  # so does the sampling sweep
    "ix_traces_trace_id",  # staff read a trace by id in any org
    "ix_traces_start",  # staff search traces across orgs
    "ix_alert_rules_due",  # the evaluation claim scans all orgs
    "ix_alert_groups_due",  # so does the notification flush
}


def test_every_index_names_the_query_it_serves() -> None:
    for table in metadata.sorted_tables:
        for index in table.indexes:
            assert index.info.get("serves"), f"{index.name} has no 'serves'"


def test_indexes_lead_with_org_id() -> None:
    for table in metadata.sorted_tables:
        for index in table.indexes:
            if index.name in CROSS_ORG_INDEXES:
                continue
            first = next(iter(index.expressions))
            assert getattr(first, "name", None) == "org_id", (
                f"{index.name} does not lead with org_id"
            )


def test_tenant_tables_have_org_id_first_in_their_primary_key_or_an_id() -> None:
    for name in TENANT_TABLES:
        pk = [c.name for c in metadata.tables[name].primary_key.columns]
        assert pk[0] in ("org_id", "id", "role_name"), name


def test_partitioned_tables_carry_their_time_column_in_every_unique_key() -> None:
    for name, spec in PARTITIONED.items():
        table = metadata.tables[name]
        assert spec.time_column in table.primary_key.columns, name
        assert not [c for c in table.columns if c.unique], name
        assert not table.c[spec.time_column].nullable


def test_raw_tables_do_not_reference_orgs() -> None:
    """A per-row foreign-key check would slow bulk COPY (see storage.schema._telemetry)."""
    for name in PARTITIONED:
        assert not metadata.tables[name].foreign_keys, name

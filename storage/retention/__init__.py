"""Retention by plan tier: ``run`` (windows, plans, the run), ``_targets`` (what the catalog
holds), ``_prune`` (dropping children, deleting in batches), ``_export`` (Parquet files of
what goes) and ``_sql`` (every runtime statement of retention)."""

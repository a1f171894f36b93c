"""The write side of ingest: rows from the receiver into raw tables, derived rows and rollups.

``writer`` (the group commit), ``rows`` (what translation builds), ``_derive`` and
``pricing`` (pure derivations), ``rollups`` (rollup maintenance at ingest on the
PostgreSQL engine and the rollup DDL generated from the declarations) and ``_sql`` (every
named runtime statement of the ingest path). Other packages import these through
``storage``.
"""

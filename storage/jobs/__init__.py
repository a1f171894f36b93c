"""Periodic jobs: ``scheduler`` (one scheduler safe with several processes), ``_runs`` (its
bookkeeping in ``scheduler_runs``), ``sampling`` (the trace sampling sweep), ``partitions``
(partition maintenance on the PostgreSQL engine) and ``_sql`` (every runtime statement of
the jobs)."""

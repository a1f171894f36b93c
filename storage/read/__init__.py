"""The read side of storage: what the query API, alerting and dashboards read.

Contract for every reader here: it takes a SQLAlchemy ``Connection`` already scoped to a
role and an org (``storage.transaction.scoped_transaction``) and never switches roles
itself, so no request can widen what it may see. Its runtime SQL goes in
``storage.read._sql`` (one module of named statements; the trace-query core keeps its
own in ``storage.read._traces_sql``); its result types are frozen, slotted dataclasses,
exported through ``storage``.
"""

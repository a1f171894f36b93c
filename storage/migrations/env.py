"""Alembic environment: runs on the connection ``storage.migrate`` hands over.

``storage.migrate`` holds an advisory lock on that connection for the whole upgrade, so
several processes may migrate at once; exactly one does the work.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from storage.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        transaction_per_migration=True,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `aeos migrate`, which provides the connection")
_run(connection)

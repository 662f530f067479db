"""Alembic's environment for the custody ledger.

Migrations run only on the connection that ``custody.ledger.schema`` hands over in
``config.attributes["connection"]``, inside the write transaction it holds (``BEGIN IMMEDIATE`` on
SQLite, the append lock on PostgreSQL), so that a schema change and appends never interleave and a
failed migration leaves nothing behind. There is no offline (``--sql``) mode.
"""

from __future__ import annotations

from alembic import context

from custody.ledger.tables import metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError("custody's migrations are applied by 'custody db upgrade' (or 'custody init')")
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

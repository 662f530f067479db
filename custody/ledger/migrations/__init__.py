"""Alembic migrations of the custody ledger's schema, applied by ``custody.ledger.schema.upgrade``
(``custody init``, ``custody db upgrade``) with a configuration built in code: no alembic.ini.

The tables in ``custody.ledger.tables`` are the source of truth for the code; each migration in
``versions/`` is a frozen copy of one change to them, so that a database at any revision can be
brought to the head. To change the schema: change ``custody.ledger.tables``, add
``versions/rNNNN_<what>.py`` with ``revision = "NNNN"`` and ``down_revision`` the previous head,
set ``custody.ledger.schema.HEAD_REVISION`` to it, and, when tools from before the change must refuse
the database, raise ``schema_info.version`` in the same migration (tools from before migrations
read only that). Migrations never downgrade: the ledger is append-only.
"""

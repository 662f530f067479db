"""Who acts: the ``event_signatures`` table (an enrolled person's SSH signature over an event's
canonical bytes, append-only like the other ledger tables) and, on every event, the database's
own ``session_user`` and client address.

On PostgreSQL a BEFORE INSERT trigger sets ``events.db_session_user`` and
``events.db_client_addr`` from ``session_user`` and ``inet_client_addr()``, overwriting whatever
the client sent: a client cannot choose them (``SET ROLE`` changes ``current_user``, not
``session_user``). On SQLite there is no database user; the columns stay empty. Neither column is
part of an event's canonical bytes, so hashes and the Merkle tree are unchanged.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

REFUSAL = "the custody ledger is append-only"

SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS event_signatures_no_update BEFORE UPDATE ON event_signatures "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE on event_signatures refused'); END",
    "CREATE TRIGGER IF NOT EXISTS event_signatures_no_delete BEFORE DELETE ON event_signatures "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE on event_signatures refused'); END",
]

POSTGRES = [
    "CREATE OR REPLACE FUNCTION custody_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{REFUSAL}: % on % refused', TG_OP, TG_TABLE_NAME; END $$",
    "DROP TRIGGER IF EXISTS event_signatures_no_change ON event_signatures",
    "CREATE TRIGGER event_signatures_no_change BEFORE UPDATE OR DELETE ON event_signatures "
    "FOR EACH ROW EXECUTE FUNCTION custody_refuse_change()",
    "DROP TRIGGER IF EXISTS event_signatures_no_truncate ON event_signatures",
    "CREATE TRIGGER event_signatures_no_truncate BEFORE TRUNCATE ON event_signatures "
    "FOR EACH STATEMENT EXECUTE FUNCTION custody_refuse_change()",
    "CREATE OR REPLACE FUNCTION custody_event_origin() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN NEW.db_session_user := session_user; "
    "NEW.db_client_addr := coalesce(host(inet_client_addr()), 'local'); RETURN NEW; END $$",
    "DROP TRIGGER IF EXISTS events_origin ON events",
    "CREATE TRIGGER events_origin BEFORE INSERT ON events "
    "FOR EACH ROW EXECUTE FUNCTION custody_event_origin()",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("events", sa.Column("db_session_user", sa.Text()))
    op.add_column("events", sa.Column("db_client_addr", sa.Text()))
    op.create_table(
        "event_signatures",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("signer", sa.Text(), nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    if dialect == "sqlite":
        statements = SQLITE
    elif dialect == "postgresql":
        statements = POSTGRES
    else:
        raise ValueError(f"the custody ledger supports SQLite and PostgreSQL, not {dialect}")
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the custody ledger is append-only: its schema is never downgraded")

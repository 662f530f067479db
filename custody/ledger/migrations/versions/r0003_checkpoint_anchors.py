"""The table ``checkpoint_anchors``: cosignatures from witnesses and RFC 3161 timestamp tokens,
kept with the checkpoint they are about (``custody.anchors.records``), append-only like the
other ledger tables (its own copy of the trigger statements, as ``append_only`` asks).

Revision ID: 0003
Revises: 0002

The table is created only when it is not there yet (a database adopted from before migrations
is checked, not rebuilt), so running this revision again changes nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "checkpoint_anchors"
REFUSAL = "the custody ledger is append-only"


def _triggers(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE on {TABLE} refused'); END",
            f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE on {TABLE} refused'); END",
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION custody_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{REFUSAL}: % on % refused', TG_OP, TG_TABLE_NAME; END $$",
            f"DROP TRIGGER IF EXISTS {TABLE}_no_change ON {TABLE}",
            f"CREATE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION custody_refuse_change()",
            f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION custody_refuse_change()",
        ]
    raise ValueError(f"the custody ledger supports SQLite and PostgreSQL, not {dialect}")


def upgrade() -> None:
    bind = op.get_bind()
    statements = _triggers(bind.dialect.name)
    if TABLE in sa.inspect(bind).get_table_names():
        for statement in statements:
            op.execute(statement)
        return
    op.create_table(
        TABLE,
        sa.Column("size", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("store_key", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size", "kind", "issuer"),
    )
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the custody ledger is append-only: its schema is never downgraded")

"""The ledger as it was before migrations: the tables events, evidence, tree_nodes, checkpoints
and schema_info (holding version 1, which tools from before migrations check), their indexes,
and the append-only triggers (``custody.ledger.migrations.append_only``).

A database created before migrations already has all of this; ``custody.ledger.schema`` adopts it by
checking it and recording this revision, without running this migration.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custody.ledger.migrations.append_only import triggers

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA_INFO_VERSION = 1


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    statements = triggers(dialect)
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject_evidence", sa.String(64)),
        sa.Column("subject_incident", sa.Text()),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_events_action", "events", ["action"])
    op.create_index("ix_events_subject_evidence", "events", ["subject_evidence"])
    op.create_index("ix_events_subject_incident", "events", ["subject_incident"])
    op.create_table(
        "evidence",
        sa.Column("blake3", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("store_key", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("blake3"),
    )
    op.create_index("ix_evidence_sha256", "evidence", ["sha256"])
    op.create_index("ix_evidence_size", "evidence", ["size"])
    op.create_table(
        "tree_nodes",
        sa.Column("level", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("idx", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("store_key", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    schema_info = op.create_table("schema_info", sa.Column("version", sa.Integer(), nullable=False))
    op.bulk_insert(schema_info, [{"version": SCHEMA_INFO_VERSION}])
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the custody ledger is append-only: its schema is never downgraded")

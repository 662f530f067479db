"""The append-only triggers, as revision 0001 creates them.

They refuse UPDATE and DELETE on every ledger table (SQLite and PostgreSQL) and, on PostgreSQL,
TRUNCATE too (a statement-level trigger: TRUNCATE fires no row triggers). They are defence in
depth; the hash chain and the signed WORM checkpoints are what make a change detectable. The
statements are idempotent, so they can be run again on a database that already has them.

A later change to the triggers is a new migration with its own copy of the statements, never an
edit of these.
"""

from __future__ import annotations

TABLES = ("events", "evidence", "tree_nodes", "checkpoints")
"""Every table the ledger only ever appends to."""

REFUSAL = "the custody ledger is append-only"
"""The beginning of every refusal message, in both dialects."""


def sqlite_triggers(table: str) -> list[str]:
    """SQLite: BEFORE UPDATE and BEFORE DELETE triggers that abort the statement."""
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE on {table} refused'); END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE on {table} refused'); END",
    ]


def postgres_triggers(table: str) -> list[str]:
    """PostgreSQL: one function raising an exception, a row trigger on UPDATE or DELETE and a
    statement trigger on TRUNCATE."""
    return [
        "CREATE OR REPLACE FUNCTION custody_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{REFUSAL}: % on % refused', TG_OP, TG_TABLE_NAME; END $$",
        f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}",
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION custody_refuse_change()",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION custody_refuse_change()",
    ]


def triggers(dialect: str) -> list[str]:
    """Every trigger statement for ``dialect`` (``sqlite`` or ``postgresql``), table by table."""
    if dialect == "sqlite":
        make = sqlite_triggers
    elif dialect == "postgresql":
        make = postgres_triggers
    else:
        raise ValueError(f"the custody ledger supports SQLite and PostgreSQL, not {dialect}")
    return [statement for table in TABLES for statement in make(table)]

"""The ledger's schema: where a database stands against this tool's migrations, and bringing it
to the head.

The schema is created and changed only by the Alembic migrations in ``custody.ledger.migrations``
(``upgrade``, behind ``Ledger.create``/``Ledger.upgrade``); ``custody.ledger.tables`` is what the
code reads and writes, and a test checks that the migrated schema matches it. Every command
first checks, with ``check_ready``, that the database is at this tool's ``HEAD_REVISION``.
Alembic is loaded only when a database is not at the head.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from custody import TOOL
from custody.errors import LedgerUnavailable
from custody.ledger.tables import schema_info
from custody.ledger.transaction import Database, reading, writing

SCHEMA_VERSION = 1
"""The version in ``schema_info``: what tools from before migrations check. A migration that
such tools must not work with raises it."""
HEAD_REVISION = "0003"
"""The newest migration in ``custody.ledger.migrations`` (a test checks it): the revision this tool needs."""
LEGACY_REVISION = "legacy-1"
"""How a database made before migrations (``schema_info`` version 1, no ``alembic_version``) is named."""
MIGRATIONS = Path(__file__).with_name("migrations")

SchemaState = Literal["current", "older", "newer", "empty"]


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this tool's migrations.

    ``revision``: the database's Alembic revision, ``LEGACY_REVISION`` for a database made before
    migrations, or None when it has no custody schema. ``state``: ``current`` (at
    ``HEAD_REVISION``), ``older`` (``custody db upgrade`` brings it to the head), ``newer`` (made
    by a later custody: upgrade the tool) or ``empty``. ``pending``: the revisions an upgrade
    would bring in, oldest first (for a database made before migrations, ``0001`` is adopted:
    checked and recorded, not run)."""

    database: str
    revision: str | None
    head: str
    state: SchemaState
    pending: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "revision": self.revision,
            "head": self.head,
            "state": self.state,
            "pending": list(self.pending),
        }


@dataclass(frozen=True)
class SchemaUpgrade:
    """What ``upgrade`` did: the revision before (None: no schema) and after, the migrations it
    ran, and whether a database made before migrations was adopted."""

    database: str
    before: str | None
    after: str
    applied: tuple[str, ...] = ()
    adopted: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "from": self.before,
            "to": self.after,
            "applied": list(self.applied),
            "adopted": self.adopted,
            "changed": self.changed,
        }


@functools.lru_cache(maxsize=1)
def migration_chain() -> tuple[str, ...]:
    """Every revision in ``custody.ledger.migrations``, oldest first (loads Alembic: only called when a
    database is not at ``HEAD_REVISION``, or to migrate it)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return tuple(reversed([revision.revision for revision in script.walk_revisions()]))


def run_alembic(conn: Connection, action: Literal["upgrade", "stamp"], revision: str) -> None:
    """Run an Alembic command on ``conn``, inside the transaction the caller holds
    (``custody/ledger/migrations/env.py`` uses that connection and opens no transaction of its own)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = conn
    if action == "stamp":
        command.stamp(config, revision)
    else:
        command.upgrade(config, revision)


def database_revision(conn: Connection) -> str | None:
    """The database's revision: the row(s) of ``alembic_version``; ``legacy-<version>`` for a
    schema made before migrations (``schema_info`` only); None when there is no custody schema."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        found = sorted(str(v) for v in conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        if found:
            return "+".join(found)
    if "schema_info" in tables:
        version = conn.execute(select(schema_info.c.version)).scalar()
        return f"legacy-{version}"
    return None


def has_schema(db: Database) -> bool:
    """Whether the database holds the ledger's events table; False when it cannot be reached."""
    try:
        return inspect(db.engine).has_table("events")
    except SQLAlchemyError:
        return False


def _status(db: Database, revision: str | None) -> SchemaStatus:
    if revision == HEAD_REVISION:
        return SchemaStatus(db.where, revision, HEAD_REVISION, "current")
    chain = migration_chain()
    if revision is None:
        return SchemaStatus(db.where, None, HEAD_REVISION, "empty", chain)
    if revision == LEGACY_REVISION:
        return SchemaStatus(db.where, revision, HEAD_REVISION, "older", chain)
    if revision in chain:
        return SchemaStatus(db.where, revision, HEAD_REVISION, "older", chain[chain.index(revision) + 1:])
    return SchemaStatus(db.where, revision, HEAD_REVISION, "newer")


def _not_ready(status: SchemaStatus) -> str:
    if status.state == "empty":
        return f"the ledger database {status.database} has no custody schema; run 'custody init' (or 'custody db upgrade')"
    if status.state == "older":
        return (
            f"the ledger database {status.database}: schema revision {status.revision} is older than "
            f"this tool's {status.head}; run 'custody db upgrade'"
        )
    return (
        f"the ledger database {status.database}: schema revision {status.revision} is newer than this "
        f"tool's {status.head} ({TOOL}); upgrade custody"
    )


def schema_status(db: Database) -> SchemaStatus:
    """The database's revision against this tool's (``custody db status``)."""
    with reading(db) as conn:
        return _status(db, database_revision(conn))


def check_ready(db: Database) -> None:
    """Raise ``LedgerUnavailable`` (exit 5) unless the database is at ``HEAD_REVISION``, saying
    what to do: no schema -> 'custody init'; an older revision -> 'custody db upgrade'; a newer
    one -> upgrade custody. Reads two small things; Alembic is loaded only when the revision is
    not the head."""
    with reading(db) as conn:
        revision = database_revision(conn)
        if revision == HEAD_REVISION:
            return
        status = _status(db, revision)
    raise LedgerUnavailable(_not_ready(status))


def upgrade(db: Database) -> SchemaUpgrade:
    """Bring the database to ``HEAD_REVISION`` with the migrations in ``custody.ledger.migrations``.

    An empty database gets the whole schema. A database made before migrations is adopted
    first: its tables must all be there, its append-only triggers are made again
    (idempotently) and it is recorded as revision 0001. Then every pending migration runs.
    All of it happens in one write transaction (``BEGIN IMMEDIATE`` on SQLite, the append
    lock on PostgreSQL, whose DDL is transactional too): concurrent upgrades and appends
    wait for each other, and a failure leaves the database as it was. At the head already,
    nothing is written. Raises ``LedgerUnavailable`` (exit 5) for a database of a newer
    custody, or one that cannot be used."""
    from alembic.util.exc import CommandError

    try:
        with writing(db, migrating=True) as conn:
            before = _status(db, database_revision(conn))
            if before.state == "current":
                return SchemaUpgrade(db.where, before.revision, HEAD_REVISION)
            if before.state == "newer":
                raise LedgerUnavailable(_not_ready(before))
            adopted = before.revision == LEGACY_REVISION
            if adopted:
                _adopt(db, conn)
            run_alembic(conn, "upgrade", "head")
            after = database_revision(conn)
            if after != HEAD_REVISION:
                raise LedgerUnavailable(
                    f"migrating the ledger database {db.where} ended at revision {after}, not "
                    f"{HEAD_REVISION}; nothing was changed"
                )
    except CommandError as exc:
        raise LedgerUnavailable(f"cannot migrate the ledger database {db.where}: {exc}") from exc
    applied = before.pending[1:] if adopted else before.pending
    return SchemaUpgrade(db.where, before.revision, HEAD_REVISION, applied, adopted)


def _adopt(db: Database, conn: Connection) -> None:
    """Record a database made before migrations as revision 0001, which is what it is."""
    from custody.ledger.migrations.append_only import TABLES, triggers

    present = set(inspect(conn).get_table_names())
    missing = [name for name in (*TABLES, "schema_info") if name not in present]
    if missing:
        raise LedgerUnavailable(
            f"the ledger database {db.where} has schema_info version 1 but no table "
            f"{', '.join(missing)}: it is not a ledger made by an earlier custody; nothing was changed"
        )
    for statement in triggers(conn.dialect.name):
        conn.execute(text(statement))
    run_alembic(conn, "stamp", migration_chain()[0])

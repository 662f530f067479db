"""``custody db``: the ledger database's schema (Alembic migrations in custody/migrations).

This module also holds the one fault-injection hook of the command line, for the tests that
kill a process or cut its database connection in the middle of an append:
``CUSTODY_TEST_PAUSE=POINT:MARKER`` makes the first write transaction that reaches POINT write
MARKER (JSON: ``pid``, ``point``, ``backend_pid``) and wait until MARKER is removed (at most
``CUSTODY_TEST_PAUSE_SECONDS``, default 60), then go on. POINT is ``insert`` (just before the
event's INSERT: the append lock is held, nothing is written yet) or ``commit`` (the event, its
tree nodes and derived rows are written but not committed). It is read here, in cli/, because
the core never reads the environment; the hook itself is ``custody.ledger.faults``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.context import emit_json, settings_from
from cli.options import json_option
from cli.render import echo

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

PAUSE_VARIABLE = "CUSTODY_TEST_PAUSE"


def _ledger(ctx: click.Context) -> Ledger:
    from custody.errors import ConfigError
    from custody.ledger.database import Ledger

    settings = settings_from(ctx)
    if settings.db_url.startswith("sqlite:///") and not Path(settings.db_url[len("sqlite:///"):]).exists():
        raise ConfigError(
            f"no custody ledger at {settings.db_url[len('sqlite:///'):]}; run 'custody init' "
            f"(data directory {settings.home})"
        )
    return Ledger(settings.db_url, settings.db_timeout)


@click.group("db")
def db() -> None:
    """Show and upgrade the ledger database's schema.

    The schema is changed only by migrations shipped with custody (Alembic, no alembic.ini).
    Every other command refuses a database whose schema revision is not this tool's (exit 5):
    an older one needs 'custody db upgrade', a newer one a newer custody. The database is the
    one of --db / CUSTODY_DB / 'db' in config.toml, else the data directory's SQLite file.

    \b
    Examples:
      custody db status
      custody db upgrade
      custody --db postgresql+psycopg://custody_admin@db.example.org/custody db upgrade --json
    """


@db.command("upgrade")
@json_option("Print what was done as JSON.")
@click.pass_context
def upgrade(ctx: click.Context, as_json: bool) -> None:
    """Apply every pending migration, in one transaction.

    An empty database gets the whole schema; a ledger made before migrations is checked and
    recorded as revision 0001. Appends by other processes wait while it runs. Safe to run
    again: a database at the newest revision is left untouched. On PostgreSQL, run it as the
    role that owns the schema (see the README's PostgreSQL section), then grant the
    application role its rights again (infra/sql/03-grants.sql).

    Exits 5 if the database cannot be reached or was made by a newer custody.

    \b
    Examples:
      custody db upgrade
      custody db upgrade --json
      CUSTODY_DB=postgresql+psycopg://custody_admin@db.example.org/custody custody db upgrade
    """
    change = _ledger(ctx).upgrade()
    if as_json:
        emit_json(change.as_dict())
    elif not change.changed:
        echo(f"{change.database}: already at schema revision {change.after}")
    else:
        steps = ["adopted the schema made before migrations as 0001"] if change.adopted else []
        if change.applied:
            steps.append("applied " + ", ".join(change.applied))
        echo(f"{change.database}: schema revision {change.before or '(none)'} -> {change.after}: {'; '.join(steps)}")


@db.command("status")
@json_option("Print the status as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the database's schema revision and this tool's.

    State is 'current', 'older' (run 'custody db upgrade'), 'newer' (upgrade custody) or
    'empty' (run 'custody init'). Exits 0 whatever the state; 5 if the database cannot be
    reached.

    \b
    Examples:
      custody db status
      custody db status --json
    """
    report = _ledger(ctx).schema_status()
    if as_json:
        emit_json(report.as_dict())
        return
    echo(f"database:       {report.database}")
    echo(f"revision:       {report.revision or '(no custody schema)'}")
    echo(f"this tool's:    {report.head}")
    advice = {"current": "", "older": " (run 'custody db upgrade')", "newer": " (upgrade custody)", "empty": " (run 'custody init')"}
    echo(f"state:          {report.state}{advice[report.state]}")
    if report.pending:
        echo(f"pending:        {', '.join(report.pending)}")


COMMANDS = [db]


def _install_test_pause(setting: str) -> None:
    """The ``CUSTODY_TEST_PAUSE`` hook (see the module docstring), on every engine
    (``custody.ledger.faults``)."""
    from custody.ledger.faults import pause_first_append

    point, _, marker = setting.partition(":")
    if point not in ("insert", "commit") or not marker:
        echo(f"custody: warning: ignoring {PAUSE_VARIABLE}={setting!r} (insert:PATH or commit:PATH)", err=True)
        return
    limit = float(os.environ.get("CUSTODY_TEST_PAUSE_SECONDS", "60"))
    pause_first_append("insert" if point == "insert" else "commit", Path(marker), limit)


if os.environ.get(PAUSE_VARIABLE):
    _install_test_pause(os.environ[PAUSE_VARIABLE])

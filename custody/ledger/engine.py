"""The ledger's database URL and SQLAlchemy engine.

Databases: SQLite (WAL, a busy timeout, full sync, ``BEGIN IMMEDIATE`` for every write
transaction) and PostgreSQL through psycopg 3 (READ COMMITTED; every write transaction first takes
the transaction-scoped advisory lock ``APPEND_LOCK``, so appends from any number of processes and
machines are serialized and the chain never forks). A write transaction is a connection with the
``custody_write`` execution option (``custody.ledger.transaction.writing``).

A URL is only ever shown through ``where``: its password hidden and other secrets masked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from custody.errors import ConfigError
from custody.settings import mask_secrets

APPEND_LOCK = 7428173
"""The PostgreSQL advisory lock key every write transaction takes (``pg_advisory_xact_lock``)."""

SUPPORTED = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"


def where(url: URL) -> str:
    """How a database URL is shown in messages: without its password or other secrets."""
    return mask_secrets(url.render_as_string(hide_password=True))


def database_url(url: str) -> URL:
    """Parse a ledger URL; a plain ``postgresql://`` (or ``postgres://``) URL gets psycopg 3.
    Raises ``ConfigError`` (exit 5) for a URL that is not SQLite or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"the ledger database (--db, CUSTODY_DB or 'db' in config.toml) is not a database URL; use {SUPPORTED}"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"the ledger database {where(parsed)} is {backend}; "
            f"custody keeps its ledger in SQLite or PostgreSQL: use {SUPPORTED}"
        )
    return parsed


def _query_value(url: URL, name: str) -> str | None:
    value = url.query.get(name)
    if isinstance(value, tuple):
        return " ".join(value)
    return value


def stored_text(raw: bytes) -> str:
    """SQLite text as stored: bytes that are not UTF-8 (only an edit outside custody puts them
    there) become lone surrogates instead of failing the whole query, so that the event holding
    them is named as altered (``custody.ledger.events.row_event``; ``verify_chain`` finds its hash
    wrong)."""
    return raw.decode("utf-8", "surrogateescape")


def make_engine(url: URL, busy_timeout: float) -> Engine:
    """SQLite: WAL, ``busy_timeout``, full sync, ``BEGIN IMMEDIATE`` for write transactions.
    PostgreSQL (psycopg 3): READ COMMITTED, a pre-ping, ``lock_timeout`` = ``busy_timeout``,
    and every write transaction (``custody_write`` execution option) starts by taking the
    transaction-scoped advisory lock ``APPEND_LOCK``: appends, checkpoint records and
    migrations from every process and machine happen one at a time."""
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": busy_timeout})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            dbapi_connection.text_factory = stored_text
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            if connection.get_execution_options().get("custody_write"):
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("BEGIN")

        return engine
    options = " ".join(filter(None, [_query_value(url, "options"), f"-c lock_timeout={max(1, int(busy_timeout * 1000))}"]))
    connect_args: dict[str, Any] = {"options": options}
    if _query_value(url, "connect_timeout") is None:
        connect_args["connect_timeout"] = 10
    if _query_value(url, "application_name") is None:
        connect_args["application_name"] = "custody"
    try:
        engine = create_engine(url, isolation_level="READ COMMITTED", pool_pre_ping=True, connect_args=connect_args)
    except ImportError as exc:
        raise ConfigError(
            f"the database driver for {url.drivername} is not installed ({exc}); use postgresql+psycopg://"
        ) from exc

    @event.listens_for(engine, "begin")
    def _lock(connection: Connection) -> None:
        if connection.get_execution_options().get("custody_write"):
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({APPEND_LOCK})")

    return engine

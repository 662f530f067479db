"""The custody ledger: an append-only sequence of hash-chained events in a SQL database.

Each event's canonical bytes (``custody.ledger.canonical``) include the previous event's hash; the
event's hash is SHA-256(0x00 || canonical bytes), which is also its Merkle leaf hash (RFC 6962).
Nothing is ever updated or deleted: triggers refuse it, and the chain (and the signed
checkpoints) make any change detectable. Current state, such as which objects are stored, is
kept in derived tables written in the same transaction as the event that implies it.

The schema is created and changed only by the Alembic migrations in ``custody.ledger.migrations``
(``Ledger.create``/``Ledger.upgrade``); the tables below are what the code reads and writes, and
a test checks that the migrated schema matches them. Every command first checks, with
``Ledger.check_ready``, that the database is at this tool's ``HEAD_REVISION``.

Databases: SQLite (WAL, a busy timeout, ``BEGIN IMMEDIATE`` for every write transaction) and
PostgreSQL through psycopg 3 (READ COMMITTED; every write transaction first takes the
transaction-scoped advisory lock ``APPEND_LOCK``, so appends from any number of processes and
machines are serialized and the chain never forks).
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.encoder
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError

from custody import TOOL
from custody.ledger.canonical import canonical_bytes
from custody.errors import ConfigError, Finding, LedgerCorrupt, LedgerUnavailable
from custody.settings import mask_secrets
from custody.ledger.tree import StoredNode, append_leaf

if TYPE_CHECKING:
    from custody.ledger.signatures import EventSigner

GENESIS = "0" * 64
SCHEMA_VERSION = 1
"""The version in ``schema_info``: what tools from before migrations check. A migration that
such tools must not work with raises it."""
HEAD_REVISION = "0003"
"""The newest migration in ``custody.ledger.migrations`` (a test checks it): the revision this tool needs."""
LEGACY_REVISION = "legacy-1"
"""How a database made before migrations (``schema_info`` version 1, no ``alembic_version``) is named."""
MIGRATIONS = Path(__file__).with_name("migrations")
APPEND_LOCK = 7428173
"""The PostgreSQL advisory lock key every write transaction takes (``pg_advisory_xact_lock``)."""

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("time", String(32), nullable=False),
    Column("actor", Text, nullable=False),
    Column("role", String(64), nullable=False),
    Column("action", String(64), nullable=False, index=True),
    Column("subject_evidence", String(64), index=True),
    Column("subject_incident", Text, index=True),
    Column("details", Text, nullable=False),
    Column("tool", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("db_session_user", Text),
    Column("db_client_addr", Text),
)
"""``db_session_user`` and ``db_client_addr`` are not part of an event's canonical bytes: on
PostgreSQL a trigger sets them from ``session_user`` and ``inet_client_addr()`` whatever the client
sent (revision 0002); on SQLite they stay empty."""

event_signatures = Table(
    "event_signatures",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("signer", Text, nullable=False),
    Column("key_fingerprint", String(64), nullable=False),
    Column("signature", Text, nullable=False),
)
"""An enrolled person's SSH signature (SSHSIG, namespace ``custody-event``) over the canonical
bytes of event ``seq`` (``custody.ledger.signatures``). An event without a row is unsigned."""

evidence = Table(
    "evidence",
    metadata,
    Column("blake3", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", Integer, nullable=False, index=True),
    Column("store_key", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("first_seq", Integer, nullable=False),
)

tree_nodes = Table(
    "tree_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("time", String(32), nullable=False),
    Column("store_key", Text, nullable=False),
)

checkpoint_anchors = Table(
    "checkpoint_anchors",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), primary_key=True),
    Column("issuer", String(255), primary_key=True),
    Column("body", Text, nullable=False),
    Column("time", String(32), nullable=False),
    Column("store_key", Text, nullable=False),
)
"""What outsiders gave for a checkpoint (``custody.anchors.records``): a witness's cosignature
line (kind ``cosignature``, issuer its key name+id) or a time-stamping authority's RFC 3161
response (kind ``rfc3161``, base64). Written by migration 0003."""

schema_info = Table(
    "schema_info",
    metadata,
    Column("version", Integer, nullable=False),
)

APPEND_ONLY = ("events", "evidence", "tree_nodes", "checkpoints", "event_signatures", "checkpoint_anchors")


@dataclass(frozen=True)
class CustodyEvent:
    seq: int
    time: str
    actor: str
    role: str
    action: str
    subject: dict[str, str]
    details: dict[str, Any]
    tool: str
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The fields that the canonical bytes commit to (everything but ``hash``)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "tool": self.tool,
            "prev_hash": self.prev_hash,
        }

    def canonical(self) -> bytes:
        return canonical_bytes(self.body())

    def as_dict(self) -> dict[str, Any]:
        record = self.body()
        record["hash"] = self.hash
        record["leaf"] = self.canonical().decode("utf-8")
        return record


def event_hash(canonical: bytes) -> str:
    """SHA-256(0x00 || canonical bytes): the event's chain hash and its Merkle leaf hash."""
    return hashlib.sha256(b"\x00" + canonical).hexdigest()


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=128)
def _nodes_by_key(count: int) -> Any:
    """A lookup of ``count`` nodes: one indexed equality per key, OR-ed together (a row-value
    IN makes SQLite scan the whole table). Parameters ``l0, i0, l1, i1, ...``."""
    terms = " OR ".join(f"(level = :l{n} AND idx = :i{n})" for n in range(count))
    return text(f"SELECT level, idx, hash FROM tree_nodes WHERE {terms}")


_EVENT_ROWS = (
    select(
        events.c.seq,
        events.c.time,
        events.c.actor,
        events.c.role,
        events.c.action,
        events.c.subject_evidence,
        events.c.subject_incident,
        events.c.details,
        events.c.tool,
        events.c.prev_hash,
        events.c.hash,
    )
    .where(events.c.seq >= bindparam("start"))
    .order_by(events.c.seq)
    .limit(bindparam("limit"))
)

_quote: Any = json.encoder.encode_basestring
"""JSON string encoding exactly as ``json.dumps(..., ensure_ascii=False)`` does it (C speed)."""


def stored_leaf(row: Sequence[Any]) -> str:
    """The canonical text of an event as stored: the columns of ``_EVENT_ROWS`` assembled in
    the canonical key order, with the stored (canonical) details text taken verbatim. For an
    intact event this equals ``CustodyEvent.canonical()``."""
    seq, time, actor, role, action, evidence_, incident, details, tool, prev_hash = row[:10]
    q = _quote
    if incident is None:
        subject = "" if evidence_ is None else f'"evidence":{q(evidence_)}'
    elif evidence_ is None:
        subject = f'"incident":{q(incident)}'
    else:
        subject = f'"evidence":{q(evidence_)},"incident":{q(incident)}'
    return (
        f'{{"action":{q(action)},"actor":{q(actor)},"details":{details},"prev_hash":{q(prev_hash)},'
        f'"role":{q(role)},"seq":{int(seq)},"subject":{{{subject}}},"time":{q(time)},"tool":{q(tool)}}}'
    )


class SqlNodeStore:
    """The Merkle tree's perfect-subtree hashes, in the ``tree_nodes`` table (custody.ledger.tree.NodeStore).

    With ``cache``, nodes read or written through this object are remembered, so a transaction
    that appends many events reads the tree's right edge from the database only once."""

    def __init__(self, conn: Connection, cache: bool = False) -> None:
        self.conn = conn
        self._cache: dict[tuple[int, int], bytes] | None = {} if cache else None

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        missing = list(keys)
        if self._cache is not None:
            missing = []
            for key in keys:
                if key in self._cache:
                    found[key] = self._cache[key]
                else:
                    missing.append(key)
        if missing:
            params: dict[str, int] = {}
            for n, (level, index) in enumerate(missing):
                params[f"l{n}"] = level
                params[f"i{n}"] = index
            rows = self.conn.execute(_nodes_by_key(len(missing)), params).all()
            for row in rows:
                found[(row.level, row.idx)] = bytes.fromhex(row.hash)
                if self._cache is not None:
                    self._cache[(row.level, row.idx)] = found[(row.level, row.idx)]
        return found

    def add_nodes(self, nodes: Sequence[StoredNode]) -> None:
        if nodes:
            self.conn.execute(tree_nodes.insert(), [{"level": lv, "idx": ix, "hash": h.hex()} for lv, ix, h in nodes])
            if self._cache is not None:
                for level, index, digest in nodes:
                    self._cache[(level, index)] = digest


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
    """What ``Ledger.upgrade`` did: the revision before (None: no schema) and after, the
    migrations it ran, and whether a database made before migrations was adopted."""

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


def _run_alembic(conn: Connection, action: Literal["upgrade", "stamp"], revision: str) -> None:
    """Run an Alembic command on ``conn``, inside the transaction the caller holds
    (``custody/migrations/env.py`` uses that connection and opens no transaction of its own)."""
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


def _database_revision(conn: Connection) -> str | None:
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


SUPPORTED = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"


def _database_url(url: str) -> URL:
    """Parse a ledger URL; a plain ``postgresql://`` (or ``postgres://``) URL gets psycopg 3."""
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
            f"the ledger database {mask_secrets(parsed.render_as_string(hide_password=True))} is {backend}; "
            f"custody keeps its ledger in SQLite or PostgreSQL: use {SUPPORTED}"
        )
    return parsed


def _query_value(url: URL, name: str) -> str | None:
    value = url.query.get(name)
    if isinstance(value, tuple):
        return " ".join(value)
    return value


def _one_line(message: str) -> str:
    return "; ".join(line.strip() for line in message.strip().splitlines() if line.strip())


_LOST_CONNECTION = ("57P01", "57P02", "57P03")
"""PostgreSQL's admin_shutdown, crash_shutdown and cannot_connect_now (and class 08: connection
exceptions) end the session: what the transaction had done is rolled back."""


class Ledger:
    """Append and read custody events. One instance per database URL."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        """Raises ``ConfigError`` (exit 5) for a URL that is not SQLite or PostgreSQL."""
        self.url = url
        parsed = _database_url(url)
        self.where = mask_secrets(parsed.render_as_string(hide_password=True))
        self.busy_timeout = busy_timeout
        self.engine: Engine = self._engine(parsed, busy_timeout)
        self.event_signer: EventSigner | None = None
        """When set, every event appended is signed with it in the same transaction (a row of
        ``event_signatures``); a signing failure appends nothing."""
        self.append_policy: Callable[[CustodyEvent], None] | None = None
        """When set, called with each event before it is stored; it refuses an event by raising."""

    @staticmethod
    def _engine(url: URL, busy_timeout: float) -> Engine:
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
                dbapi_connection.text_factory = _stored_text
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

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
        """The error a command shows for a database error ``exc``: locked, connection lost, or
        the database's own message on one line."""
        original = getattr(exc, "orig", None) or exc
        text_ = _one_line(str(original))
        sqlstate = str(getattr(original, "sqlstate", None) or "")
        if "locked" in text_ or "busy" in text_ or sqlstate == "55P03":
            return LedgerUnavailable(
                f"the ledger database {self.where} is locked by another writer and stayed locked "
                f"for {self.busy_timeout:g} s; run the command again when the other custody "
                "command has finished (set CUSTODY_DB_TIMEOUT to wait longer)"
            )
        if getattr(exc, "connection_invalidated", False) or sqlstate in _LOST_CONNECTION or sqlstate.startswith("08"):
            return LedgerUnavailable(
                f"lost the connection to the ledger database {self.where} ({text_}); the transaction "
                "in progress was not committed (nothing of it is in the ledger), unless the "
                "connection broke during the commit itself; run the command again when the "
                "database is reachable: an ingest run again records what was already preserved"
            )
        return LedgerUnavailable(f"cannot use the ledger database {self.where}: {text_}")

    def create(self) -> None:
        """Create the schema, or bring an existing one to ``HEAD_REVISION``: ``upgrade``."""
        self.upgrade()

    def upgrade(self) -> SchemaUpgrade:
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
            with self.engine.connect().execution_options(custody_write=True) as conn, conn.begin():
                before = self._status(conn, _database_revision(conn))
                if before.state == "current":
                    return SchemaUpgrade(self.where, before.revision, HEAD_REVISION)
                if before.state == "newer":
                    raise LedgerUnavailable(self._not_ready(before))
                adopted = before.revision == LEGACY_REVISION
                if adopted:
                    self._adopt(conn)
                _run_alembic(conn, "upgrade", "head")
                after = _database_revision(conn)
                if after != HEAD_REVISION:
                    raise LedgerUnavailable(
                        f"migrating the ledger database {self.where} ended at revision {after}, not "
                        f"{HEAD_REVISION}; nothing was changed"
                    )
        except SQLAlchemyError as exc:
            if str(getattr(getattr(exc, "orig", None), "sqlstate", "")) == "42501":
                raise LedgerUnavailable(
                    f"cannot migrate the ledger database {self.where}: {_one_line(str(getattr(exc, 'orig', exc)))}; "
                    "run 'custody db upgrade' as the role that owns the ledger's schema (custody_admin in "
                    "infra/sql/), not as the application's role; nothing was changed"
                ) from exc
            raise self._unavailable(exc) from exc
        except CommandError as exc:
            raise LedgerUnavailable(f"cannot migrate the ledger database {self.where}: {exc}") from exc
        applied = before.pending[1:] if adopted else before.pending
        return SchemaUpgrade(self.where, before.revision, HEAD_REVISION, applied, adopted)

    def _adopt(self, conn: Connection) -> None:
        """Record a database made before migrations as revision 0001, which is what it is."""
        from custody.ledger.migrations.append_only import TABLES, triggers

        present = set(inspect(conn).get_table_names())
        missing = [name for name in (*TABLES, "schema_info") if name not in present]
        if missing:
            raise LedgerUnavailable(
                f"the ledger database {self.where} has schema_info version 1 but no table "
                f"{', '.join(missing)}: it is not a ledger made by an earlier custody; nothing was changed"
            )
        for statement in triggers(self.engine.dialect.name):
            conn.execute(text(statement))
        _run_alembic(conn, "stamp", migration_chain()[0])

    def schema_status(self) -> SchemaStatus:
        """The database's revision against this tool's (``custody db status``)."""
        try:
            with self.engine.connect() as conn:
                return self._status(conn, _database_revision(conn))
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc

    def _status(self, conn: Connection, revision: str | None) -> SchemaStatus:
        if revision == HEAD_REVISION:
            return SchemaStatus(self.where, revision, HEAD_REVISION, "current")
        chain = migration_chain()
        if revision is None:
            return SchemaStatus(self.where, None, HEAD_REVISION, "empty", chain)
        if revision == LEGACY_REVISION:
            return SchemaStatus(self.where, revision, HEAD_REVISION, "older", chain)
        if revision in chain:
            return SchemaStatus(self.where, revision, HEAD_REVISION, "older", chain[chain.index(revision) + 1:])
        return SchemaStatus(self.where, revision, HEAD_REVISION, "newer")

    def _not_ready(self, status: SchemaStatus) -> str:
        if status.state == "empty":
            return f"the ledger database {self.where} has no custody schema; run 'custody init' (or 'custody db upgrade')"
        if status.state == "older":
            return (
                f"the ledger database {self.where}: schema revision {status.revision} is older than "
                f"this tool's {status.head}; run 'custody db upgrade'"
            )
        return (
            f"the ledger database {self.where}: schema revision {status.revision} is newer than this "
            f"tool's {status.head} ({TOOL}); upgrade custody"
        )

    def check_ready(self) -> None:
        """Raise ``LedgerUnavailable`` (exit 5) unless the database is at ``HEAD_REVISION``,
        saying what to do: no schema -> 'custody init'; an older revision -> 'custody db
        upgrade'; a newer one -> upgrade custody. Reads two small things; Alembic is loaded
        only when the revision is not the head."""
        try:
            with self.engine.connect() as conn:
                revision = _database_revision(conn)
                if revision == HEAD_REVISION:
                    return
                status = self._status(conn, revision)
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        raise LedgerUnavailable(self._not_ready(status))

    def transaction(self) -> _Transaction:
        """A write transaction that holds the append lock for its whole length."""
        return _Transaction(self)

    def append(
        self,
        action: str,
        *,
        actor: str,
        role: str = "technician",
        subject: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> CustodyEvent:
        """Append one event in its own transaction."""
        with self.transaction() as tx:
            return tx.append(action, actor=actor, role=role, subject=subject, details=details)

    def head(self) -> tuple[int, str]:
        """(number of events, hash of the last event or the genesis hash)."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(events.c.seq, events.c.hash).order_by(events.c.seq.desc()).limit(1)
                ).first()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        return (0, GENESIS) if row is None else (row.seq + 1, row.hash)

    def events(
        self,
        *,
        evidence: str | None = None,
        incident: str | None = None,
        actions: Sequence[str] | None = None,
        start: int = 0,
        batch: int = 5000,
    ) -> Iterator[CustodyEvent]:
        """Events in sequence order, optionally only those about one evidence object, one
        incident, and/or with one of ``actions``."""
        position = start
        try:
            with self.engine.connect() as conn:
                while True:
                    query = select(events).where(events.c.seq >= position).order_by(events.c.seq).limit(batch)
                    if evidence is not None:
                        query = query.where(events.c.subject_evidence == evidence)
                    if incident is not None:
                        query = query.where(events.c.subject_incident == incident)
                    if actions is not None:
                        query = query.where(events.c.action.in_(list(actions)))
                    rows = conn.execute(query).all()
                    if not rows:
                        return
                    for row in rows:
                        yield _row_event(row)
                    position = rows[-1].seq + 1
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc

    def evidence_row(self, blake3: str) -> Mapping[str, Any] | None:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(evidence).where(evidence.c.blake3 == blake3)).first()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        return None if row is None else dict(row._mapping)

    def size_known(self, size: int) -> bool:
        """Whether some preserved object has exactly ``size`` bytes (identical bytes have
        identical sizes, so only then can a file be a repeat)."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(select(evidence.c.blake3).where(evidence.c.size == size).limit(1)).first() is not None
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc

    def find_evidence(self, prefix: str) -> list[str]:
        """Digests of stored objects whose BLAKE3 starts with ``prefix`` (at most 2 returned)."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(evidence.c.blake3).where(evidence.c.blake3.like(prefix + "%")).limit(2)
                ).all()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        return [r.blake3 for r in rows]

    def all_evidence(self) -> list[Mapping[str, Any]]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(evidence).order_by(evidence.c.blake3)).all()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        return [dict(r._mapping) for r in rows]

    def with_nodes(self, work: Any) -> Any:
        """Run ``work(node_store)`` in one read transaction over the tree's stored nodes."""
        try:
            with self.engine.connect() as conn, conn.begin():
                return work(SqlNodeStore(conn))
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc

    def checkpoint_rows(self) -> list[Mapping[str, Any]]:
        """Every checkpoint recorded in the database, smallest tree first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(checkpoints).order_by(checkpoints.c.size)).all()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        return [dict(r._mapping) for r in rows]

    def record_checkpoint(self, *, size: int, root: str, note: str, store_key: str) -> None:
        """Record a signed checkpoint (once per tree size; a repeat is ignored)."""
        try:
            with self.engine.connect().execution_options(custody_write=True) as conn, conn.begin():
                exists = conn.execute(select(checkpoints.c.size).where(checkpoints.c.size == size)).first()
                if exists is None:
                    conn.execute(
                        checkpoints.insert().values(size=size, root=root, note=note, time=utc_now(), store_key=store_key)
                    )
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc

    def leaf_hashes_from(self, start: int) -> Iterator[str]:
        """Stored event hashes (hex) from sequence number ``start`` on."""
        for _seq, _prev, digest in self.leaf_hashes(start=start, batch=1000):
            yield digest

    def leaf_hashes(self, start: int = 0, batch: int = 20000) -> Iterator[tuple[int, str, str]]:
        """(seq, prev_hash, hash) of every event from ``start``, in order, without decoding details."""
        position = start
        try:
            with self.engine.connect() as conn:
                while True:
                    rows = conn.execute(
                        select(events.c.seq, events.c.prev_hash, events.c.hash)
                        .where(events.c.seq >= position)
                        .order_by(events.c.seq)
                        .limit(batch)
                    ).all()
                    if not rows:
                        return
                    yield from ((r.seq, r.prev_hash, r.hash) for r in rows)
                    position = rows[-1].seq + 1
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc

    def verify_chain(self, on_leaf: Any = None, batch: int = 20000) -> tuple[int, list[Finding]]:
        """Recompute every event's hash and the links between them.

        Returns (events checked, findings). A finding names each broken event; checking goes on
        after the first so that every break is reported. ``on_leaf(recomputed)`` receives each
        event's recomputed leaf hash (32 bytes), in order, to rebuild the Merkle tree.

        The canonical bytes are assembled from the stored columns (details are stored in
        canonical form), so any change to any stored byte changes the recomputed hash."""
        findings: list[Finding] = []
        expected_prev = GENESIS
        expected_seq = 0
        count = 0
        position = 0
        sha256 = hashlib.sha256
        try:
            with self.engine.connect() as conn:
                while True:
                    rows = conn.execute(_EVENT_ROWS, {"start": position, "limit": batch}).all()
                    if not rows:
                        break
                    for row in rows:
                        seq, prev_hash, stored_hash = row[0], row[9], row[10]
                        count += 1
                        if seq != expected_seq:
                            findings.append(
                                Finding("ledger-corrupt", f"event {seq}", f"sequence gap: expected event {expected_seq}")
                            )
                        if prev_hash != expected_prev:
                            findings.append(
                                Finding(
                                    "ledger-corrupt",
                                    f"event {seq}",
                                    "previous-hash link broken (an event before it was changed, removed or inserted)",
                                    "sha256",
                                    expected_prev,
                                    prev_hash,
                                )
                            )
                        leaf = sha256(b"\x00" + stored_leaf(row).encode("utf-8", "surrogatepass")).digest()
                        if leaf.hex() != stored_hash:
                            findings.append(
                                Finding(
                                    "ledger-corrupt",
                                    f"event {seq}",
                                    "content does not match its hash (the event was altered)",
                                    "sha256",
                                    stored_hash,
                                    leaf.hex(),
                                )
                            )
                        if on_leaf is not None:
                            on_leaf(leaf)
                        expected_prev = stored_hash
                        expected_seq = seq + 1
                    position = rows[-1][0] + 1
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        return count, findings

    def verify_or_raise(self) -> int:
        count, findings = self.verify_chain()
        if findings:
            raise LedgerCorrupt(findings)
        return count


class _Transaction:
    """Serialized append transaction: ``BEGIN IMMEDIATE`` on SQLite, the advisory transaction
    lock ``APPEND_LOCK`` on PostgreSQL (both taken when the write connection begins, see
    ``Ledger._engine``), so that concurrent writers never fork the chain."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.conn: Connection | None = None
        self._head: tuple[int, str] | None = None
        self._node_store: SqlNodeStore | None = None
        self.appended: list[CustodyEvent] = []

    def __enter__(self) -> _Transaction:
        try:
            self.conn = self.ledger.engine.connect().execution_options(custody_write=True)
            self.conn.begin()
        except (OperationalError, SQLAlchemyError) as exc:
            if self.conn is not None:
                self.conn.close()
            raise self.ledger._unavailable(exc) from exc
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.conn is not None
        try:
            if exc_type is None:
                self._sign_appended()
                self.conn.commit()
            else:
                self.conn.rollback()
        except SQLAlchemyError as error:
            self.conn.rollback()
            raise self.ledger._unavailable(error) from error
        finally:
            self.conn.close()

    @property
    def connection(self) -> Connection:
        assert self.conn is not None
        return self.conn

    def _sign_appended(self) -> None:
        """Sign this transaction's events with ``Ledger.event_signer`` (one batch) and store the
        signatures beside them, before the commit."""
        signer = self.ledger.event_signer
        if signer is None or not self.appended:
            return
        signed = signer.sign_many([event.canonical() for event in self.appended])
        self.connection.execute(
            event_signatures.insert(),
            [
                {"seq": event.seq, "signer": signer.name, "key_fingerprint": signer.public_key.fingerprint,
                 "signature": signature}
                for event, signature in zip(self.appended, signed, strict=True)
            ],
        )

    def _nodes(self) -> SqlNodeStore:
        if self._node_store is None:
            self._node_store = SqlNodeStore(self.connection, cache=True)
        return self._node_store

    def head(self) -> tuple[int, str]:
        if self._head is None:
            row = self.connection.execute(
                select(events.c.seq, events.c.hash).order_by(events.c.seq.desc()).limit(1)
            ).first()
            self._head = (0, GENESIS) if row is None else (row.seq + 1, row.hash)
        return self._head

    def append(
        self,
        action: str,
        *,
        actor: str,
        role: str = "technician",
        subject: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> CustodyEvent:
        seq, prev = self.head()
        draft = CustodyEvent(
            seq=seq,
            time=utc_now(),
            actor=actor,
            role=role,
            action=action,
            subject=dict(subject or {}),
            details=dict(details or {}),
            tool=TOOL,
            prev_hash=prev,
            hash="",
        )
        if self.ledger.append_policy is not None:
            self.ledger.append_policy(draft)
        digest = event_hash(draft.canonical())
        stored = CustodyEvent(**{**draft.__dict__, "hash": digest})
        try:
            self.connection.execute(
                events.insert(),
                {
                    "seq": seq,
                    "time": stored.time,
                    "actor": actor,
                    "role": role,
                    "action": action,
                    "subject_evidence": stored.subject.get("evidence"),
                    "subject_incident": stored.subject.get("incident"),
                    "details": canonical_bytes(stored.details).decode("utf-8"),
                    "tool": stored.tool,
                    "prev_hash": prev,
                    "hash": digest,
                },
            )
        except IntegrityError as exc:
            raise _append_conflict(seq) from exc
        except SQLAlchemyError as exc:
            raise self.ledger._unavailable(exc) from exc
        nodes = self._nodes()
        try:
            nodes.add_nodes(append_leaf(nodes, seq, bytes.fromhex(digest)))
        except IntegrityError as exc:
            raise _append_conflict(seq) from exc
        except SQLAlchemyError as exc:
            raise self.ledger._unavailable(exc) from exc
        self._head = (seq + 1, digest)
        self.appended.append(stored)
        return stored

    def add_evidence(self, *, blake3: str, sha256: str, size: int, store_key: str, version: str, seq: int) -> None:
        try:
            self.connection.execute(
                evidence.insert().values(
                    blake3=blake3, sha256=sha256, size=size, store_key=store_key, version=version, first_seq=seq
                )
            )
        except SQLAlchemyError as exc:
            raise self.ledger._unavailable(exc) from exc

    def evidence_row(self, blake3: str) -> Mapping[str, Any] | None:
        row = self.connection.execute(select(evidence).where(evidence.c.blake3 == blake3)).first()
        return None if row is None else dict(row._mapping)


def _stored_text(raw: bytes) -> str:
    """SQLite text as stored: bytes that are not UTF-8 (only an edit outside custody puts them
    there) become lone surrogates instead of failing the whole query, so that the event holding
    them is named as altered (``_row_event``; ``verify_chain`` finds its hash wrong)."""
    return raw.decode("utf-8", "surrogateescape")


def _not_utf8(seq: int) -> LedgerCorrupt:
    return LedgerCorrupt([Finding(
        "ledger-corrupt", f"event {seq}",
        "its stored text is not valid UTF-8: the event was altered outside custody; "
        "run 'custody ledger verify' for every finding",
    )])


def _append_conflict(seq: int) -> LedgerCorrupt:
    """An append that collides with stored rows: appends are serialized, so rows already there
    for the next event mean events were removed or the ledger was otherwise altered."""
    return LedgerCorrupt([Finding(
        "ledger-corrupt", f"event {seq}",
        f"cannot append event {seq}: the ledger already holds tree data for it, so events were removed "
        "or the ledger was altered after they were sealed; nothing was appended. Run 'custody ledger "
        "verify' for every finding",
    )])


def _has_surrogates(text: str | None) -> bool:
    return text is not None and any("\udc80" <= char <= "\udcff" for char in text)


def _details(stored: str) -> dict[str, Any]:
    """Stored details; text that is no longer JSON is kept as-is so that verification reports
    the event instead of failing."""
    try:
        value = json.loads(stored)
    except ValueError:
        return {"unparseable": stored}
    return value if isinstance(value, dict) else {"unparseable": stored}


def _row_event(row: Any) -> CustodyEvent:
    """The event of a stored row; ``LedgerCorrupt`` naming it when its text is not UTF-8."""
    if any(_has_surrogates(value) for value in (row.time, row.actor, row.role, row.action, row.subject_evidence,
                                                row.subject_incident, row.details, row.tool, row.prev_hash, row.hash)):
        raise _not_utf8(row.seq)
    subject: dict[str, str] = {}
    if row.subject_evidence is not None:
        subject["evidence"] = row.subject_evidence
    if row.subject_incident is not None:
        subject["incident"] = row.subject_incident
    return CustodyEvent(
        seq=row.seq,
        time=row.time,
        actor=row.actor,
        role=row.role,
        action=row.action,
        subject=subject,
        details=_details(row.details),
        tool=row.tool,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


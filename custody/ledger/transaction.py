"""The one boundary between the ledger and its database: connections, transactions, and the
translation of SQLAlchemy and DBAPI errors into the project's own (``custody.errors``).

Every use of the ledger's database goes through ``reading`` (a read connection), ``writing`` (a
write transaction, committed at the end) or ``WriteTransaction`` (the append transaction), all
of which run inside ``translated``: a database error leaves as ``LedgerUnavailable`` (exit 5)
saying what to do (locked, connection lost, permission to migrate, or the database's own message
on one line); an append that collides with stored rows leaves as ``LedgerCorrupt`` (exit 3).
Nothing above the ledger wing sees a SQLAlchemy exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from custody import TOOL
from custody import times
from custody.errors import LedgerUnavailable
from custody.ledger import events as stored_events
from custody.ledger.events import CustodyEvent, append_conflict, event_hash
from custody.ledger.nodes import SqlNodeStore
from custody.ledger.tables import event_signatures, evidence
from custody.ledger.tree import append_leaf

if TYPE_CHECKING:
    from custody.ledger.sshsig import PublicKey


class Database(Protocol):
    """What the boundary needs of a ledger: its engine and how to name it in messages."""

    @property
    def engine(self) -> Engine: ...

    @property
    def where(self) -> str: ...

    @property
    def busy_timeout(self) -> float: ...


class EventSigner(Protocol):
    """Signs events' canonical bytes as one enrolled person (``custody.ledger.signatures``)."""

    name: str
    """The enrolled person's name: the ``actor`` of every event signed."""
    public_key: PublicKey

    def sign_many(self, messages: Sequence[bytes]) -> list[str]:
        """Armored SSH signatures (namespace ``custody-event``), one per message, in order."""
        ...


class Appending(Database, Protocol):
    """What a write transaction needs of its ledger (``custody.ledger.database.Ledger``): the
    database, and who signs and who may refuse the events appended."""

    @property
    def event_signer(self) -> EventSigner | None: ...

    @property
    def append_policy(self) -> Callable[[CustodyEvent], None] | None: ...


_LOST_CONNECTION = ("57P01", "57P02", "57P03")
"""PostgreSQL's admin_shutdown, crash_shutdown and cannot_connect_now (and class 08: connection
exceptions) end the session: what the transaction had done is rolled back."""

_NOT_PERMITTED = "42501"
"""PostgreSQL's insufficient_privilege."""


def _one_line(message: str) -> str:
    return "; ".join(line.strip() for line in message.strip().splitlines() if line.strip())


def unavailable(db: Database, exc: Exception, *, migrating: bool = False) -> LedgerUnavailable:
    """The error a command shows for a database error ``exc``: locked, connection lost, not
    permitted to migrate, or the database's own message on one line."""
    original = getattr(exc, "orig", None) or exc
    text_ = _one_line(str(original))
    sqlstate = str(getattr(original, "sqlstate", None) or "")
    if migrating and sqlstate == _NOT_PERMITTED:
        return LedgerUnavailable(
            f"cannot migrate the ledger database {db.where}: {text_}; "
            "run 'custody db upgrade' as the role that owns the ledger's schema (custody_admin in "
            "infra/sql/), not as the application's role; nothing was changed"
        )
    if "locked" in text_ or "busy" in text_ or sqlstate == "55P03":
        return LedgerUnavailable(
            f"the ledger database {db.where} is locked by another writer and stayed locked "
            f"for {db.busy_timeout:g} s; run the command again when the other custody "
            "command has finished (set CUSTODY_DB_TIMEOUT to wait longer)"
        )
    if getattr(exc, "connection_invalidated", False) or sqlstate in _LOST_CONNECTION or sqlstate.startswith("08"):
        return LedgerUnavailable(
            f"lost the connection to the ledger database {db.where} ({text_}); the transaction "
            "in progress was not committed (nothing of it is in the ledger), unless the "
            "connection broke during the commit itself; run the command again when the "
            "database is reachable: an ingest run again records what was already preserved"
        )
    return LedgerUnavailable(f"cannot use the ledger database {db.where}: {text_}")


@contextmanager
def translated(db: Database, *, appending: int | None = None, migrating: bool = False) -> Iterator[None]:
    """Turn the database errors raised inside (SQLAlchemy's, and the driver's own, from a raw
    cursor) into the project's: ``LedgerUnavailable``, or,
    with ``appending`` (the sequence number of the event being appended), ``LedgerCorrupt`` for
    rows that are already there. The project's own errors pass through unchanged."""
    try:
        yield
    except IntegrityError as exc:
        if appending is not None:
            raise append_conflict(appending) from exc
        raise unavailable(db, exc, migrating=migrating) from exc
    except SQLAlchemyError as exc:
        raise unavailable(db, exc, migrating=migrating) from exc
    except Exception as exc:
        dbapi = getattr(db.engine.dialect, "loaded_dbapi", None)
        if dbapi is not None and isinstance(exc, dbapi.Error):
            raise unavailable(db, exc, migrating=migrating) from exc
        raise


@contextmanager
def reading(db: Database) -> Iterator[Connection]:
    """A connection for reads (on SQLite, a plain ``BEGIN`` when a transaction is begun)."""
    with translated(db), db.engine.connect() as conn:
        yield conn


@contextmanager
def writing(db: Database, *, migrating: bool = False) -> Iterator[Connection]:
    """A write transaction holding the append lock (``custody.ledger.engine``), committed when
    the block ends without an error and rolled back otherwise."""
    with translated(db, migrating=migrating), db.engine.connect().execution_options(custody_write=True) as conn, conn.begin():
        yield conn


class WriteTransaction:
    """Serialized append transaction: ``BEGIN IMMEDIATE`` on SQLite, the advisory transaction
    lock ``APPEND_LOCK`` on PostgreSQL (both taken when the write connection begins, see
    ``custody.ledger.engine``), so that concurrent writers never fork the chain. The events
    appended are signed (``Ledger.event_signer``) just before the commit."""

    def __init__(self, ledger: Appending) -> None:
        self.ledger = ledger
        self.conn: Connection | None = None
        self._head: tuple[int, str] | None = None
        self._node_store: SqlNodeStore | None = None
        self.appended: list[CustodyEvent] = []

    def __enter__(self) -> WriteTransaction:
        try:
            with translated(self.ledger):
                self.conn = self.ledger.engine.connect().execution_options(custody_write=True)
                self.conn.begin()
        except LedgerUnavailable:
            if self.conn is not None:
                self.conn.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn = self.connection
        try:
            with translated(self.ledger):
                try:
                    if exc_type is None:
                        self._sign_appended()
                        conn.commit()
                    else:
                        conn.rollback()
                except SQLAlchemyError:
                    conn.rollback()
                    raise
        finally:
            conn.close()

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
            with translated(self.ledger):
                self._head = stored_events.head(self.connection)
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
            time=times.stamp(),
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
        stored = CustodyEvent(**{**draft.__dict__, "hash": event_hash(draft.canonical())})
        with translated(self.ledger, appending=seq):
            stored_events.insert_event(self.connection, stored)
            nodes = self._nodes()
            nodes.add_nodes(append_leaf(nodes, seq, bytes.fromhex(stored.hash)))
        self._head = (seq + 1, stored.hash)
        self.appended.append(stored)
        return stored

    def add_evidence(self, *, blake3: str, sha256: str, size: int, store_key: str, version: str, seq: int) -> None:
        with translated(self.ledger):
            self.connection.execute(
                evidence.insert().values(
                    blake3=blake3, sha256=sha256, size=size, store_key=store_key, version=version, first_seq=seq
                )
            )

    def evidence_row(self, blake3: str) -> Mapping[str, Any] | None:
        with translated(self.ledger):
            row = self.connection.execute(select(evidence).where(evidence.c.blake3 == blake3)).first()
        return None if row is None else dict(row._mapping)

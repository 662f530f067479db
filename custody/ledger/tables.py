"""The ledger's tables: what the code reads and writes (SQLAlchemy Core).

The schema itself is created and changed only by the Alembic migrations in
``custody.ledger.migrations``, whose environment imports nothing of the ledger but this module;
a test checks that the migrated schema matches these tables. Nothing is ever updated or deleted
in the tables of ``APPEND_ONLY``: triggers refuse it.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, Text

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

"""The ledger on a real PostgreSQL, and its schema migrations on PostgreSQL and SQLite.

* Appends, ``custody ledger verify`` and tampering on PostgreSQL: the triggers refuse UPDATE,
  DELETE and TRUNCATE on every ledger table, even for a superuser's plain statement; a change
  made with the triggers out of the way is found by ``custody ledger verify``.
* The roles of ``infra/sql/``: the application role appends and verifies, but cannot UPDATE,
  DELETE, TRUNCATE or drop a trigger, also after the owner has dropped the triggers; the
  owning role cannot log in.
* Migrations (both databases): the migrated schema is what ``custody/ledger.py`` declares, and
  on SQLite it is byte for byte the schema made before migrations; a database of an older
  schema (made before migrations) or a newer one is refused with exit 5 and the message saying
  what to do; ``custody db upgrade`` adopts the older one, keeping its events; an upgrade waits
  for the append lock.
* PostgreSQL specifics: a held append lock makes a writer wait and then fail clearly (exit 5),
  the file stays preserved and a re-run records it; an unreachable server is exit 5 with the
  password hidden; a plain ``postgresql://`` URL uses psycopg 3.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import blake3
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from custody.ledger.database import APPEND_LOCK, HEAD_REVISION, Ledger, migration_chain
from custody.ledger.tables import metadata
from custody.ledger.migrations.append_only import TABLES
from tests.conftest import Custody
from tests.integration.conftest import REPO, PostgresServer, free_port

pytestmark = pytest.mark.integration

SQL = REPO / "infra" / "sql"
LEDGER_TABLES = (*TABLES, "event_signatures", "checkpoint_anchors")
"""Every append-only table at the head revision (revision 0002 added event_signatures, 0003
checkpoint_anchors)."""

SCHEMA_BEFORE_MIGRATIONS = [
    ("index", "ix_events_action", "CREATE INDEX ix_events_action ON events (action)"),
    ("index", "ix_events_subject_evidence", "CREATE INDEX ix_events_subject_evidence ON events (subject_evidence)"),
    ("index", "ix_events_subject_incident", "CREATE INDEX ix_events_subject_incident ON events (subject_incident)"),
    ("index", "ix_evidence_sha256", "CREATE INDEX ix_evidence_sha256 ON evidence (sha256)"),
    ("index", "ix_evidence_size", "CREATE INDEX ix_evidence_size ON evidence (size)"),
    ("index", "sqlite_autoindex_events_1", None),
    ("index", "sqlite_autoindex_evidence_1", None),
    ("index", "sqlite_autoindex_tree_nodes_1", None),
    ("table", "checkpoints", "CREATE TABLE checkpoints (\n\tsize INTEGER NOT NULL, \n\troot VARCHAR(64) NOT NULL, \n\tnote TEXT NOT NULL, \n\ttime VARCHAR(32) NOT NULL, \n\tstore_key TEXT NOT NULL, \n\tPRIMARY KEY (size)\n)"),
    ("table", "events", "CREATE TABLE events (\n\tseq INTEGER NOT NULL, \n\ttime VARCHAR(32) NOT NULL, \n\tactor TEXT NOT NULL, \n\trole VARCHAR(64) NOT NULL, \n\taction VARCHAR(64) NOT NULL, \n\tsubject_evidence VARCHAR(64), \n\tsubject_incident TEXT, \n\tdetails TEXT NOT NULL, \n\ttool VARCHAR(64) NOT NULL, \n\tprev_hash VARCHAR(64) NOT NULL, \n\thash VARCHAR(64) NOT NULL, \n\tPRIMARY KEY (seq), \n\tUNIQUE (hash)\n)"),
    ("table", "evidence", "CREATE TABLE evidence (\n\tblake3 VARCHAR(64) NOT NULL, \n\tsha256 VARCHAR(64) NOT NULL, \n\tsize INTEGER NOT NULL, \n\tstore_key TEXT NOT NULL, \n\tversion TEXT NOT NULL, \n\tfirst_seq INTEGER NOT NULL, \n\tPRIMARY KEY (blake3)\n)"),
    ("table", "schema_info", "CREATE TABLE schema_info (\n\tversion INTEGER NOT NULL\n)"),
    ("table", "tree_nodes", "CREATE TABLE tree_nodes (\n\tlevel INTEGER NOT NULL, \n\tidx INTEGER NOT NULL, \n\thash VARCHAR(64) NOT NULL, \n\tPRIMARY KEY (level, idx)\n)"),
] + [
    ("trigger", f"{table}_no_{op.lower()}",
     f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN SELECT RAISE(ABORT, "
     f"'the custody ledger is append-only: {op} on {table} refused'); END")
    for table in sorted(TABLES) for op in ("DELETE", "UPDATE")
]
"""sqlite_master of a ledger made by custody before migrations (``metadata.create_all`` plus
the triggers), as it was recorded from that code."""


def sql_rows(url: str, statement: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(statement)
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()


def station(tmp_path: Path, url: str, actor: str = "tech-0412") -> Custody:
    """The command line (in-process) with its own data directory, on the ledger at ``url``."""
    return Custody(tmp_path / "home", {
        "CUSTODY_HOME": str(tmp_path / "home"),
        "CUSTODY_ACTOR": actor,
        "CUSTODY_DB": url,
        "CUSTODY_STORE": "",
        "CUSTODY_FFPROBE": str(REPO / "no-ffprobe-in-these-tests"),
    })


def footage(tmp_path: Path, n: int, tag: str = "clip") -> list[Path]:
    directory = tmp_path / f"{tag}s"
    directory.mkdir(exist_ok=True)
    paths = []
    for index in range(n):
        path = directory / f"{tag}-{index}.mp4"
        path.write_bytes(os.urandom(1500 + index))
        paths.append(path)
    return paths


def digest(path: Path) -> str:
    return blake3.blake3(path.read_bytes()).hexdigest()


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The data directory's SQLite ledger, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'custody.db'}"
    return str(request.getfixturevalue("pg_url"))


# ---- the ledger on PostgreSQL ------------------------------------------------------------


def test_ingest_log_and_ledger_verify_on_postgres(pg_url: str, tmp_path: Path) -> None:
    custody = station(tmp_path, pg_url)
    init = custody.json("init")
    assert init["database"] == pg_url and init["database_created"] is True
    assert not (custody.home / "custody.db").exists(), "no SQLite ledger is made when --db names PostgreSQL"
    clips = footage(tmp_path, 3)
    recorded = custody.json("ingest", *map(str, clips))
    assert [r["status"] for r in recorded] == ["recorded"] * 3
    assert sql_rows(pg_url, "SELECT seq, subject_evidence FROM events ORDER BY seq") == [
        (n, digest(clip)) for n, clip in enumerate(clips)
    ]
    report = custody.json("ledger", "verify")
    assert report["events"] == 3 and report["findings"] == [] and report["checkpoints_in_database"] == 1
    assert custody.json("show", digest(clips[1]))["blake3"] == digest(clips[1])


def test_postgres_triggers_refuse_update_delete_and_truncate_on_every_ledger_table(pg_url: str, tmp_path: Path) -> None:
    import psycopg

    custody = station(tmp_path, pg_url)
    ok(custody("init"))
    ok(custody("ingest", *map(str, footage(tmp_path, 2))))
    before = {table: sql_rows(pg_url, f"SELECT * FROM {table} ORDER BY 1") for table in TABLES}
    assert all(before.values())
    libpq = pg_url.replace("postgresql+psycopg://", "postgresql://")
    for table in TABLES:
        column = {"events": "actor", "evidence": "store_key", "tree_nodes": "hash", "checkpoints": "note"}[table]
        for operation, statement in (
            ("UPDATE", f"UPDATE {table} SET {column} = 'x'"),
            ("DELETE", f"DELETE FROM {table}"),
            ("TRUNCATE", f"TRUNCATE {table}"),
        ):
            with psycopg.connect(libpq, autocommit=True) as conn:
                with pytest.raises(psycopg.errors.RaiseException, match=f"append-only: {operation} on {table} refused"):
                    conn.execute(statement.encode())
    assert {table: sql_rows(pg_url, f"SELECT * FROM {table} ORDER BY 1") for table in TABLES} == before


@pytest.mark.parametrize("tampering, expected", [
    ("UPDATE events SET actor = 'someone-else' WHERE seq = 1", "event 1: content does not match its hash"),
    ("DELETE FROM events WHERE seq = 2", "checkpoint 3: the WORM checkpoint covers 3 events but the ledger has only 2"),
    ("TRUNCATE events, tree_nodes, evidence, checkpoints", "checkpoint 3: in WORM storage but missing from the database"),
])
def test_postgres_tampering_with_the_triggers_disabled_is_found_by_ledger_verify(
    pg_url: str, tmp_path: Path, tampering: str, expected: str
) -> None:
    custody = station(tmp_path, pg_url)
    ok(custody("init"))
    ok(custody("ingest", *map(str, footage(tmp_path, 3))))
    assert custody.json("ledger", "verify")["findings"] == []
    sql_rows(pg_url, "; ".join(f"ALTER TABLE {table} DISABLE TRIGGER USER" for table in TABLES))
    sql_rows(pg_url, tampering)
    result = custody("ledger", "verify", "--json")
    assert result.exit_code == 3, result.output
    findings = [f"{f['subject']}: {f['message']}" for f in json.loads(result.stdout)["findings"]]
    assert any(line.startswith(expected) for line in findings), findings


def _psql_ok(postgres: PostgresServer, *args: str, database: str = "postgres", user: str = "postgres") -> None:
    done = postgres.psql(*args, database=database, user=user)
    assert done.returncode == 0, done.stderr


def test_application_role_appends_but_cannot_change_the_ledger_even_without_triggers(
    postgres: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    import psycopg

    database = pg_url.rsplit("/", 1)[1]
    _psql_ok(postgres, "-v", "app_password=not-used-with-trust", "-f", str(SQL / "01-roles.sql"))
    _psql_ok(postgres, "-f", str(SQL / "01-roles.sql"))
    _psql_ok(postgres, "-f", str(SQL / "02-database.sql"), database=database)
    app_url = postgres.url(database, "custody_app")
    app = station(tmp_path / "station", app_url)
    refused = app("db", "upgrade")
    assert refused.exit_code == 5
    assert "permission denied for schema custody" in refused.stderr
    assert "run 'custody db upgrade' as the role that owns the ledger's schema" in refused.stderr
    admin = station(tmp_path / "admin", postgres.url(database, "custody_admin"))
    upgraded = admin.json("db", "upgrade")
    assert upgraded["from"] is None and upgraded["to"] == HEAD_REVISION
    _psql_ok(postgres, "-f", str(SQL / "03-grants.sql"), database=database, user="custody_admin")
    owners = postgres.execute(
        "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'custody' ORDER BY 1", database)
    assert owners == [(name, "custody_owner") for name in
                      ("alembic_version", "checkpoint_anchors", "checkpoints", "event_signatures", "events", "evidence",
                       "schema_info", "tree_nodes")]

    ok(app("init"))
    clips = footage(tmp_path, 2)
    assert [r["status"] for r in app.json("ingest", *map(str, clips))] == ["recorded", "recorded"]
    assert app.json("ledger", "verify")["findings"] == []

    for table in LEDGER_TABLES:
        postgres.execute(f"DROP TRIGGER {table}_no_change ON {table}; DROP TRIGGER {table}_no_truncate ON {table}",
                         database, user="custody_admin")
    postgres.execute("DROP TRIGGER events_origin ON events", database, user="custody_admin")
    assert postgres.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal", database) == [(0,)]
    before = sql_rows(app_url, "SELECT * FROM events ORDER BY seq")
    libpq = app_url.replace("postgresql+psycopg://", "postgresql://")
    refusals = {
        "UPDATE events SET actor = 'x'": "permission denied for table events",
        "DELETE FROM events": "permission denied for table events",
        "TRUNCATE events": "permission denied for table events",
        "UPDATE evidence SET store_key = 'x'": "permission denied for table evidence",
        "DELETE FROM tree_nodes": "permission denied for table tree_nodes",
        "TRUNCATE checkpoints": "permission denied for table checkpoints",
        "DELETE FROM event_signatures": "permission denied for table event_signatures",
        "DELETE FROM checkpoint_anchors": "permission denied for table checkpoint_anchors",
        "INSERT INTO alembic_version VALUES ('9999')": "permission denied for table alembic_version",
        "ALTER TABLE events DISABLE TRIGGER ALL": "must be owner of table events",
        "CREATE TRIGGER t BEFORE INSERT ON events EXECUTE FUNCTION custody_refuse_change()":
            "permission denied for table events",
        "CREATE TABLE events_copy (seq int)": "permission denied for schema custody",
    }
    for statement, message in refusals.items():
        with psycopg.connect(libpq, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=message):
                conn.execute(statement.encode())
    assert sql_rows(app_url, "SELECT * FROM events ORDER BY seq") == before
    with pytest.raises(psycopg.OperationalError, match='role "custody_owner" is not permitted to log in'):
        psycopg.connect(postgres.url(database, "custody_owner").replace("postgresql+psycopg://", "postgresql://"))


# ---- migrations, on both databases --------------------------------------------------------


def test_migrated_schema_is_what_ledger_py_declares(ledger_url: str, tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    (tmp_path / "home").mkdir()
    assert migration_chain()[0] == "0001" and migration_chain()[-1] == HEAD_REVISION
    ledger = Ledger(ledger_url)
    change = ledger.upgrade()
    assert (change.before, change.after, change.applied) == (None, HEAD_REVISION, migration_chain())
    with ledger.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert sql_rows(ledger_url, "SELECT version FROM schema_info") == [(1,)]
    if ledger.is_sqlite:
        names = {row[0] for row in sql_rows(ledger_url, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert names == {f"{table}_no_{op}" for table in LEDGER_TABLES for op in ("update", "delete")}
    else:
        names = {row[0] for row in sql_rows(ledger_url, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
        assert names == {f"{table}_no_{kind}" for table in LEDGER_TABLES for kind in ("change", "truncate")} | {
            "events_origin"}
    assert ledger.upgrade().applied == () and ledger.schema_status().state == "current"


def test_sqlite_migration_makes_exactly_the_schema_from_before_migrations(tmp_path: Path) -> None:
    from custody.ledger.schema import run_alembic as _run_alembic

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    with ledger.engine.connect().execution_options(custody_write=True) as conn, conn.begin():
        _run_alembic(conn, "upgrade", "0001")
    found = sql_rows(url, "SELECT type, name, sql FROM sqlite_master WHERE tbl_name != 'alembic_version' ORDER BY type, name")
    assert found == SCHEMA_BEFORE_MIGRATIONS


def make_legacy(url: str) -> None:
    """Turn a ledger at the head revision into one as custody made it before migrations: no
    alembic_version, and none of what later revisions added (0002: event_signatures, the two
    event origin columns and their trigger; 0003: checkpoint_anchors)."""
    if url.startswith("sqlite"):
        sql_rows(url, "DROP TABLE alembic_version")
        sql_rows(url, "DROP TABLE event_signatures")
        sql_rows(url, "DROP TABLE checkpoint_anchors")
        sql_rows(url, "ALTER TABLE events DROP COLUMN db_session_user")
        sql_rows(url, "ALTER TABLE events DROP COLUMN db_client_addr")
    else:
        sql_rows(url, "DROP TABLE alembic_version; DROP TABLE event_signatures; DROP TABLE checkpoint_anchors; "
                      "DROP TRIGGER events_origin ON events; "
                      "ALTER TABLE events DROP COLUMN db_session_user, DROP COLUMN db_client_addr")


def test_older_schema_is_refused_with_exit_5_until_db_upgrade_adopts_it(ledger_url: str, tmp_path: Path) -> None:
    custody = station(tmp_path, ledger_url)
    ok(custody("init"))
    first, second = footage(tmp_path, 2)
    ok(custody("ingest", str(first)))
    make_legacy(ledger_url)

    for args in (["log"], ["ingest", str(second)], ["ledger", "verify"]):
        refused = custody(*args)
        assert refused.exit_code == 5, refused.output
        assert f"schema revision legacy-1 is older than this tool's {HEAD_REVISION}; run 'custody db upgrade'" in refused.stderr
    assert not (custody.home / "store" / "objects" / "evidence" / digest(second)).exists(), "nothing was done"
    status = custody.json("db", "status")
    assert (status["revision"], status["state"], status["pending"]) == ("legacy-1", "older", list(migration_chain()))

    upgraded = custody.json("db", "upgrade")
    assert (upgraded["from"], upgraded["to"], upgraded["adopted"], upgraded["applied"]) == (
        "legacy-1", HEAD_REVISION, True, list(migration_chain()[1:]))
    assert custody.json("db", "status")["state"] == "current"
    assert [e["subject"]["evidence"] for e in custody.json("log")] == [digest(first)]
    assert custody.json("ingest", str(second))[0]["status"] == "recorded"
    report = custody.json("ledger", "verify")
    assert report["events"] == 2 and report["findings"] == []


def test_newer_schema_is_refused_with_exit_5_and_left_alone(ledger_url: str, tmp_path: Path) -> None:
    custody = station(tmp_path, ledger_url)
    ok(custody("init"))
    sql_rows(ledger_url, "UPDATE alembic_version SET version_num = '9999'")
    for args in (["log"], ["db", "upgrade"], ["init"]):
        refused = custody(*args)
        assert refused.exit_code == 5, refused.output
        assert f"schema revision 9999 is newer than this tool's {HEAD_REVISION}" in refused.stderr
        assert refused.stderr.rstrip().endswith("upgrade custody")
    assert custody.json("db", "status")["state"] == "newer"
    assert sql_rows(ledger_url, "SELECT version_num FROM alembic_version") == [("9999",)]


def test_empty_postgres_database_says_run_custody_init_and_db_upgrade_creates_the_schema(pg_url: str, tmp_path: Path) -> None:
    custody = station(tmp_path, pg_url)
    refused = custody("log")
    assert refused.exit_code == 5
    assert "has no custody schema; run 'custody init'" in refused.stderr
    status = custody.json("db", "status")
    assert (status["revision"], status["state"], status["pending"]) == (None, "empty", list(migration_chain()))
    upgraded = custody("db", "upgrade")
    assert upgraded.exit_code == 0
    assert f"schema revision (none) -> {HEAD_REVISION}: applied {', '.join(migration_chain())}" in upgraded.stdout
    assert custody.json("db", "status")["state"] == "current"
    assert custody.json("log") == []


def test_db_upgrade_of_a_missing_sqlite_ledger_says_run_custody_init(tmp_path: Path) -> None:
    custody = station(tmp_path, "")
    refused = custody("db", "upgrade")
    assert refused.exit_code == 5
    assert f"no custody ledger at {custody.home / 'custody.db'}; run 'custody init'" in refused.stderr
    assert not (custody.home / "custody.db").exists()


def _hold_append_lock(url: str) -> Any:
    """A foreign writer holding custody's append lock; ``.close()`` releases it."""
    if url.startswith("sqlite"):
        holder = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        return holder
    import psycopg

    holder = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
    return holder


def test_db_upgrade_takes_the_append_lock(ledger_url: str, tmp_path: Path) -> None:
    custody = station(tmp_path, ledger_url)
    ok(custody("init"))
    make_legacy(ledger_url)
    holder = _hold_append_lock(ledger_url)
    try:
        began = time.monotonic()
        refused = custody("db", "upgrade", env={"CUSTODY_DB_TIMEOUT": "1"})
        waited = time.monotonic() - began
    finally:
        holder.close()
    assert refused.exit_code == 5, refused.output
    assert "is locked by another writer and stayed locked for 1 s" in refused.stderr
    assert waited >= 1
    assert Ledger(ledger_url).schema_status().revision == "legacy-1", "nothing was changed"
    assert custody.json("db", "upgrade")["to"] == HEAD_REVISION
    assert Ledger(ledger_url).schema_status().state == "current"


# ---- PostgreSQL specifics -----------------------------------------------------------------


def test_held_append_lock_makes_an_ingest_wait_then_fail_clearly_and_the_rerun_records(pg_url: str, tmp_path: Path) -> None:
    custody = station(tmp_path, pg_url)
    ok(custody("init"))
    [clip] = footage(tmp_path, 1)
    holder = _hold_append_lock(pg_url)
    try:
        began = time.monotonic()
        result = custody("ingest", str(clip), env={"CUSTODY_DB_TIMEOUT": "1"})
        waited = time.monotonic() - began
    finally:
        holder.close()
    assert result.exit_code == 5, result.output
    assert "is locked by another writer and stayed locked for 1 s" in result.stderr
    assert waited >= 1
    assert (custody.home / "store" / "objects" / "evidence" / digest(clip)).exists(), "preserved before the append"
    assert sql_rows(pg_url, "SELECT count(*) FROM events") == [(0,)]
    rerun = custody.json("ingest", str(clip))
    assert rerun[0]["status"] == "recorded"
    assert "recovered" in custody.json("log")[0]["details"]


def test_unreachable_postgres_is_exit_5_with_the_password_hidden(tmp_path: Path) -> None:
    custody = station(tmp_path, f"postgresql+psycopg://clerk:s3cret-pw@127.0.0.1:{free_port()}/custody")
    for args in (["init"], ["db", "status"]):
        result = custody(*args)
        assert result.exit_code == 5, result.output
        assert "postgresql+psycopg://clerk:***@127.0.0.1:" in result.stderr
        assert "Connection refused" in result.stderr
        assert "s3cret-pw" not in result.output + result.stderr


def test_plain_postgresql_url_uses_psycopg_3(postgres: PostgresServer, pg_url: str, tmp_path: Path) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    custody = station(tmp_path, plain)
    assert custody.json("init")["database"] == pg_url
    assert [r["status"] for r in custody.json("ingest", *map(str, footage(tmp_path, 1)))] == ["recorded"]


def test_a_database_url_of_another_kind_is_refused(tmp_path: Path) -> None:
    custody = station(tmp_path, "mysql://clerk@127.0.0.1/custody")
    result = custody("init")
    assert result.exit_code == 5
    assert "custody keeps its ledger in SQLite or PostgreSQL" in result.stderr

"""On PostgreSQL each event records the database's own session_user and client address, set by
a trigger, not by the client; signed events work on PostgreSQL as on SQLite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.conftest import PostgresServer
from tests.integration.test_postgres import SQL, _psql_ok, footage, ok, sql_rows, station

pytestmark = pytest.mark.integration


def _roles(postgres: PostgresServer, database: str) -> None:
    """The infra/sql roles: custody_admin migrates (as custody_owner), custody_app appends."""
    _psql_ok(postgres, "-f", str(SQL / "01-roles.sql"))
    _psql_ok(postgres, "-f", str(SQL / "02-database.sql"), database=database)
    admin = station(Path(postgres.directory) / f"admin-{database}", postgres.url(database, "custody_admin"))
    ok(admin("db", "upgrade"))
    _psql_ok(postgres, "-f", str(SQL / "03-grants.sql"), database=database, user="custody_admin")


def test_events_record_the_databases_session_user_and_client_address_whatever_the_client_says(
    postgres: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    import psycopg

    database = pg_url.rsplit("/", 1)[1]
    _roles(postgres, database)
    app_url = postgres.url(database, "custody_app")
    app = station(tmp_path / "station", app_url, actor="custody_admin")
    ok(app("init"))
    assert [r["status"] for r in app.json("ingest", *map(str, footage(tmp_path, 2)))] == ["recorded", "recorded"]
    origins = sql_rows(app_url, "SELECT seq, actor, db_session_user, db_client_addr FROM events ORDER BY seq")
    assert origins == [(0, "custody_admin", "custody_app", "127.0.0.1"), (1, "custody_admin", "custody_app", "127.0.0.1")]

    libpq = app_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq, autocommit=True, application_name="custody_admin") as conn:
        conn.execute(
            b"INSERT INTO events (seq, time, actor, role, action, details, tool, prev_hash, hash, db_session_user, "
            b"db_client_addr) VALUES (2, 't', 'x', 'r', 'noted', '{}', 't', 'p', 'h', 'custody_admin', '10.9.8.7')"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(b"SET SESSION AUTHORIZATION custody_admin")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(b"SET ROLE custody_owner")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(b"DROP TRIGGER events_origin ON events")
    assert sql_rows(app_url, "SELECT db_session_user, db_client_addr FROM events WHERE seq = 2") == [
        ("custody_app", "127.0.0.1")]

    # custody_admin works as custody_owner (SET role): session_user still names who logged in
    postgres.execute(
        "INSERT INTO events (seq, time, actor, role, action, details, tool, prev_hash, hash, db_session_user) "
        "VALUES (3, 't', 'x', 'r', 'noted', '{}', 't', 'p', 'h3', 'custody_app')", database, user="custody_admin")
    assert sql_rows(app_url, "SELECT db_session_user FROM events WHERE seq = 3") == [("custody_admin",)]
    assert postgres.execute("SELECT current_user, session_user", database, user="custody_admin") == [
        ("custody_owner", "custody_admin")]


def test_signed_events_on_postgres_verify_and_a_tampered_signature_is_a_finding(pg_url: str, tmp_path: Path) -> None:
    keygen = require_tool("ssh-keygen")
    key = tmp_path / "admin"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    custody = station(tmp_path, pg_url)
    ok(custody("init", "--admin", "admin-1", "--admin-key", str(key)))
    ok(custody("--key", str(key), "actor", "enroll", "tech-1", "--role", "technician", "--key",
               "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBH6lNLvJpp4v5qjU6EzZuAvWe8vfyjjTOLTT7g3kfKj"))
    report = custody.json("ledger", "verify")
    assert report["ok"] is True and report["actors"]["signed"] == 3 and report["actors"]["roles_set"] == [1]
    assert sql_rows(pg_url, "SELECT db_session_user FROM events ORDER BY seq") == [("postgres",)] * 3
    sql_rows(pg_url, "ALTER TABLE event_signatures DISABLE TRIGGER USER")
    first = sql_rows(pg_url, "SELECT signature FROM event_signatures WHERE seq = 1")[0][0]
    other = sql_rows(pg_url, "SELECT signature FROM event_signatures WHERE seq = 0")[0][0]
    assert first != other
    sql_rows(pg_url, f"UPDATE event_signatures SET signature = '{other}' WHERE seq = 1")
    result = custody("ledger", "verify", "--json")
    assert result.exit_code == 3
    findings = json.loads(result.stdout)["findings"]
    assert [(f["subject"], f["kind"]) for f in findings] == [("event 1", "bad-signature")]


def test_on_postgres_events_are_judged_by_the_roles_recorded_when_they_were_made(pg_url: str, tmp_path: Path) -> None:
    """config.toml's roles changed after the fact change no verdict; a hold a technician placed
    while the recorded roles allowed it stays good, one forged after they stopped stays a finding."""
    from custody.ledger.database import Ledger
    from custody.ledger.signatures import FileKeySigner

    keygen = require_tool("ssh-keygen")
    keys = {}
    for name in ("admin", "tech"):
        keys[name] = tmp_path / name
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(keys[name])], check=True)
    custody = station(tmp_path, pg_url)
    config = custody.home / "config.toml"
    ok(custody("init", "--admin", "admin-1", "--admin-key", str(keys["admin"])))
    ok(custody("--key", str(keys["admin"]), "actor", "enroll", "tech-1", "--role", "technician",
               "--key-file", str(keys["tech"]) + ".pub"))
    [clip] = footage(tmp_path, 1)
    ok(custody("--key", str(keys["tech"]), "ingest", str(clip)))
    digest = custody.json("log")[-1]["subject"]["evidence"]
    config.write_text('[actors.roles.technician]\nactions = ["ingested", "hold-placed"]\n')
    ok(custody("--key", str(keys["admin"]), "actor", "roles", "set"))
    ok(custody("--key", str(keys["tech"]), "hold", "place", "H-1", "--authority", "court", "--reason", "r", digest[:12]))
    config.write_text('[actors.roles.technician]\nactions = ["ingested"]\n')
    ok(custody("--key", str(keys["admin"]), "actor", "roles", "set"))
    ledger = Ledger(pg_url)
    ledger.event_signer = FileKeySigner.load("tech-1", keys["tech"])
    forged = ledger.append("hold-placed", actor="tech-1", role="technician", subject={"evidence": digest},
                           details={"hold": "H-2", "authority": "a", "reason": "r"})
    ledger.close()
    for text in ('[actors.roles.technician]\nactions = ["ingested", "hold-placed"]\n', ""):
        config.write_text(text)
        result = custody("ledger", "verify", "--json")
        assert result.exit_code == 3
        report = json.loads(result.stdout)
        assert [(f["subject"], f["kind"]) for f in report["findings"]] == [(f"event {forged.seq}", "role-not-permitted")]
        assert len(report["actors"]["roles_set"]) == 3

"""Many writers, one ledger: real ``custody`` processes on SQLite and on a real PostgreSQL.

* 8 processes ingest 50 distinct files each into one ledger at the same time: every file is
  recorded exactly once, event numbers run 0..N-1 without a gap or a repeat, the writers really
  did interleave, and ``custody ledger verify`` passes.
* A process SIGKILLed while its append transaction is open (the event, its tree nodes and the
  evidence row written, not committed) leaves no trace of it in the ledger; the object it
  stored stays preserved and running the ingest again records it.
* PostgreSQL: the connection cut (``pg_terminate_backend``) between storing and appending, or
  just before the commit: exit 5 with a clear message, nothing recorded, the object preserved,
  and the re-run records it.

The processes are paused at exact points with the command line's test hook
``CUSTODY_TEST_PAUSE=POINT:MARKER`` (cli/commands/db_cmd.py).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from custody.ledger.database import APPEND_LOCK
from tests.integration.conftest import REPO, PostgresServer

pytestmark = pytest.mark.integration

WRITERS = 8
FILES_EACH = 50


@dataclass
class Site:
    """One ledger (the data directory's SQLite file, or a fresh PostgreSQL database) with the
    data directory (local store, signing key) that every process shares."""

    backend: str
    home: Path
    url: str
    server: PostgresServer | None

    def env(self, **extra: str) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("CUSTODY_")}
        env.update(
            PYTHONPATH=str(REPO),
            CUSTODY_HOME=str(self.home),
            CUSTODY_DB=self.url,
            CUSTODY_STORE="",
            CUSTODY_ACTOR="tech-0412",
            CUSTODY_FFPROBE=str(REPO / "no-ffprobe-in-these-tests"),
        )
        env.update(extra)
        return env

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=REPO, env=self.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=REPO, env=self.env(**env), capture_output=True, text=True, timeout=180,
        )

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.exec_driver_sql(sql).all()]
        finally:
            engine.dispose()

    def counts(self) -> dict[str, int]:
        return {table: self.rows(f"SELECT count(*) FROM {table}")[0][0] for table in ("events", "evidence", "tree_nodes")}

    def stored(self, digest: str) -> bool:
        return (self.home / "store" / "objects" / "evidence" / digest).is_file()

    @contextmanager
    def append_lock(self) -> Iterator[None]:
        """Hold the lock every custody write transaction takes, as a foreign writer would."""
        if self.server is None:
            holder = sqlite3.connect(self.home / "custody.db", isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            return
        import psycopg

        with psycopg.connect(libpq_url(self.url)) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            try:
                yield
            finally:
                holder.rollback()


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    home = tmp_path / "home"
    if request.param == "sqlite":
        made = Site("sqlite", home, f"sqlite:///{home / 'custody.db'}", None)
    else:
        made = Site("postgresql", home, request.getfixturevalue("pg_url"), request.getfixturevalue("postgres"))
    done = made.run("init")
    assert done.returncode == 0, done.stderr
    return made


def write_files(directory: Path, count: int, tag: str) -> dict[str, Path]:
    """``count`` files of distinct random bytes; BLAKE3 hex -> path."""
    directory.mkdir(parents=True)
    made = {}
    for index in range(count):
        path = directory / f"{tag}-{index:03d}.mp4"
        path.write_bytes(os.urandom(2048 + index))
        made[blake3.blake3(path.read_bytes()).hexdigest()] = path
    return made


def wait_for(condition: Callable[[], bool], what: str, processes: list[subprocess.Popen[str]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"a custody process ended (exit {process.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def waiting_for_append_lock(site: Site) -> int:
    """PostgreSQL: how many sessions wait for custody's advisory lock."""
    return int(site.rows(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        f"AND objid = {APPEND_LOCK} AND objsubid = 1"
    )[0][0])


def test_eight_processes_ingesting_at_once_record_every_file_exactly_once(site: Site, tmp_path: Path) -> None:
    batches = [write_files(tmp_path / f"dock-{n}", FILES_EACH, f"dock{n}") for n in range(WRITERS)]
    expected = {digest for batch in batches for digest in batch}
    assert len(expected) == WRITERS * FILES_EACH
    firsts = [min(batch.items(), key=lambda item: item[1].name)[0] for batch in batches]
    with site.append_lock():
        writers = [
            site.start("ingest", "--json", str(tmp_path / f"dock-{n}"),
                       CUSTODY_ACTOR=f"station-{n}", CUSTODY_DB_TIMEOUT="120")
            for n in range(WRITERS)
        ]
        if site.server is not None:
            wait_for(lambda: waiting_for_append_lock(site) == WRITERS, "every writer to wait for the append lock", writers)
        else:
            wait_for(lambda: all(site.stored(d) for d in firsts), "every writer to store its first file", writers)
        assert site.counts()["events"] == 0, "nothing is appended while another writer holds the lock"
    outputs = []
    for writer in writers:
        out, err = writer.communicate(timeout=180)
        assert writer.returncode == 0, err[-3000:]
        outputs.append(json.loads(out))
    assert [sorted(r["status"] for r in output) for output in outputs] == [["recorded"] * FILES_EACH] * WRITERS

    events = site.rows("SELECT seq, action, subject_evidence, actor FROM events ORDER BY seq")
    assert [row[0] for row in events] == list(range(len(events))), "event numbers have a gap or a repeat"
    ingested = collections.Counter(row[2] for row in events if row[1] == "ingested")
    assert set(ingested) == expected and set(ingested.values()) == {1}, "a file was lost or recorded twice"
    assert len(ingested) == WRITERS * FILES_EACH == 400
    evidence = dict(site.rows("SELECT blake3, first_seq FROM evidence"))
    assert set(evidence) == expected
    assert all(events[seq][2] == digest and events[seq][1] == "ingested" for digest, seq in evidence.items())
    # No assertion on how the writers' events interleave: bulk ingest appends in batches
    # (custody.evidence.bulk.Batch) and SQLite's lock is not fair, so one writer's events may
    # come in long runs. The concurrency this test is about is proven above: every writer stored
    # a file while another held the ledger's lock, and each file is recorded exactly once.

    verified = site.run("ledger", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["events"] == len(events) and report["findings"] == []


def test_a_writer_killed_in_the_middle_of_its_transaction_leaves_no_partial_event(site: Site, tmp_path: Path) -> None:
    [(first_digest, first)] = write_files(tmp_path / "first", 1, "first").items()
    assert site.run("ingest", str(first)).returncode == 0
    before = site.counts()
    [(victim_digest, victim)] = write_files(tmp_path / "victim", 1, "victim").items()
    marker = tmp_path / "paused.json"
    writer = site.start("ingest", str(victim), CUSTODY_TEST_PAUSE=f"commit:{marker}")
    try:
        wait_for(marker.exists, "the writer to pause before its commit", [writer])
        paused = json.loads(marker.read_text())
        assert paused["pid"] == writer.pid and paused["point"] == "commit"
        if site.server is not None:
            held = site.rows(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                f"AND objid = {APPEND_LOCK} AND pid = {int(paused['backend_pid'])}"
            )
            assert held == [(1,)], "the paused writer holds the append lock inside its transaction"
        else:
            probe = sqlite3.connect(site.home / "custody.db", timeout=0, isolation_level=None)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
            probe.close()
        assert site.counts() == before, "uncommitted rows are invisible to other sessions"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL

    assert site.counts() == before, "the killed transaction left rows behind"
    assert site.rows(f"SELECT count(*) FROM events WHERE subject_evidence = '{victim_digest}'") == [(0,)]
    assert site.stored(victim_digest), "the object is preserved before its event is appended"
    verified = site.run("ledger", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["events"] == before["events"]

    rerun = site.run("ingest", "--json", str(victim), CUSTODY_DB_TIMEOUT="60")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)[0]["status"] == "recorded"
    events = site.rows("SELECT seq, subject_evidence, details FROM events ORDER BY seq")
    assert [row[0] for row in events] == list(range(before["events"] + 1))
    assert events[-1][1] == victim_digest and "recovered" in json.loads(events[-1][2])
    assert events[0][1] == first_digest
    assert site.run("ledger", "verify").returncode == 0


@pytest.mark.parametrize("point", ["insert", "commit"])
def test_postgres_connection_lost_mid_ingest_is_exit_5_and_the_rerun_records(
    postgres: PostgresServer, pg_url: str, tmp_path: Path, point: str
) -> None:
    site = Site("postgresql", tmp_path / "home", pg_url, postgres)
    assert site.run("init").returncode == 0
    [(_, first)] = write_files(tmp_path / "first", 1, "first").items()
    assert site.run("ingest", str(first)).returncode == 0
    before = site.counts()
    [(victim_digest, victim)] = write_files(tmp_path / "victim", 1, "victim").items()
    marker = tmp_path / "paused.json"
    writer = site.start("ingest", str(victim), CUSTODY_TEST_PAUSE=f"{point}:{marker}")
    try:
        wait_for(marker.exists, f"the writer to pause at {point}", [writer])
        backend = int(json.loads(marker.read_text())["backend_pid"])
        assert postgres.execute(f"SELECT pg_terminate_backend({backend})") == [(True,)]
        marker.unlink()
        out, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()
    assert writer.returncode == 5, err
    assert "custody: error: lost the connection to the ledger database postgresql+psycopg://" in err
    assert "run the command again" in err
    assert "Traceback" not in err and "sqlalche.me" not in err and "psycopg.errors" not in err
    assert site.counts() == before, "nothing of the interrupted transaction is in the ledger"
    assert site.stored(victim_digest), "the object stays preserved"

    rerun = site.run("ingest", "--json", str(victim))
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)[0]["status"] == "recorded"
    last = site.rows("SELECT subject_evidence, details FROM events ORDER BY seq DESC LIMIT 1")[0]
    assert last[0] == victim_digest and "recovered" in json.loads(last[1])
    assert site.run("ledger", "verify").returncode == 0

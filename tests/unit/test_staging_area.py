"""The staging area's locks and sweep (storage.staging), in one process: a file is told to be a
live writer's or a dead writer's by its lock alone (flock locks belong to an open file, so two
opens in one process exclude each other as two processes would)."""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import threading
from datetime import timedelta
from pathlib import Path

from storage import staging
from storage.base import Retention
from storage.local import LocalStore


def _dead_writer(directory: Path, data: bytes, suffix: str = ".part") -> Path:
    """A staging file whose writer is gone: written, then its descriptor closed without
    committing or removing it (what a SIGKILL does)."""
    held = staging.create(directory, suffix)
    os.write(held.fd, data)
    held.release(remove=False)
    assert held.path.exists()
    return held.path


def test_a_live_writers_file_is_kept_and_a_dead_writers_file_is_swept(tmp_path: Path) -> None:
    live = staging.create(tmp_path, ".part")
    os.write(live.fd, b"still writing")
    dead = _dead_writer(tmp_path, b"x" * 1000)
    found = staging.sweep(tmp_path)
    assert [(f.path, f.size, f.removed, f.linked) for f in found] == [(str(dead), 1000, True, False)]
    assert live.path.exists() and not dead.exists()
    live.release()
    assert list(tmp_path.iterdir()) == []


def test_a_report_only_sweep_removes_nothing(tmp_path: Path) -> None:
    dead = _dead_writer(tmp_path, b"abc", ".meta")
    [found] = staging.sweep(tmp_path, remove=False)
    assert found.path == str(dead) and not found.removed and dead.exists()


def test_files_not_named_as_staging_files_and_links_are_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not ours")
    target = tmp_path / "target"
    target.write_text("a link's target")
    (tmp_path / ("0" * 32 + ".part")).symlink_to(target)
    assert staging.sweep(tmp_path) == []
    assert other.exists() and target.exists()


def test_a_leftover_linked_as_an_object_is_swept_and_the_object_stays(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    dead = _dead_writer(tmp_path / "tmp", b"evidence")
    stored = tmp_path / "object"
    os.link(dead, stored)
    [found] = staging.sweep(tmp_path / "tmp")
    assert found.linked and found.removed
    assert stored.read_bytes() == b"evidence"


def test_the_sweep_waits_while_a_writer_is_between_creating_and_locking_its_file(tmp_path: Path) -> None:
    creating = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(creating, fcntl.LOCK_SH)  # a writer inside its creation window
    unlocked = _dead_writer(tmp_path, b"created, lock not yet taken")
    result: list[list[staging.Leftover]] = []
    sweeper = threading.Thread(target=lambda: result.append(staging.sweep(tmp_path)))
    sweeper.start()
    sweeper.join(0.3)
    assert sweeper.is_alive() and unlocked.exists(), "the sweep must not judge a file in its creation window"
    os.close(creating)
    sweeper.join(10)
    assert [f.path for f in result[0]] == [str(unlocked)]


def test_held_files_are_removed_when_the_process_ends_on_an_interrupt(tmp_path: Path) -> None:
    first, second = staging.create(tmp_path, ".part"), staging.create(tmp_path, ".meta")
    assert staging.discard_held() >= 2
    assert not first.path.exists() and not second.path.exists()
    first.release()  # idempotent: the descriptor is not closed twice


def test_a_put_that_finds_an_interrupted_puts_record_gets_the_retention_it_asked_for(tmp_path: Path) -> None:
    """The lock record of a put killed before its bytes were linked holds that put's retention;
    the next put of the same bytes must end with at least its own (else confirm_stored fails)."""
    store = LocalStore.create(tmp_path / "store")
    data = b"recovered after a kill"
    sha = hashlib.sha256(data).hexdigest()
    now = store.now().replace(microsecond=0)
    _, meta = store._paths("evidence/k")
    store._link_meta("evidence/k", meta, len(data), sha, Retention("COMPLIANCE", now + timedelta(days=1)), False, None)
    later = Retention("COMPLIANCE", now + timedelta(days=90))
    info = store.put("evidence/k", io.BytesIO(data), len(data), sha256=sha, retention=later, legal_hold=True)
    assert info.retention is not None and info.retention.until == later.until
    assert info.legal_hold
    assert list((tmp_path / "store" / "tmp").iterdir()) == []

"""custody ingest through the command line: outcomes, bad input, and the ledger's side effects."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import blake3
import pytest

from tests.conftest import Custody


def records(result) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(result.stdout)


def by_path(result) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {r["path"]: r for r in records(result)}


def stored_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "store" / "objects" / "evidence").rglob("*") if p.is_file())


def test_ingest_directory_records_every_clip_with_both_digests(initialized: Custody, clip_dir: Path) -> None:
    result = initialized("ingest", str(clip_dir), "--json", "--note", "dock 3")
    assert result.exit_code == 0, result.output
    out = records(result)
    assert [Path(r["path"]).name for r in out] == ["BWC-001.mp4", "BWC-002.mp4", "BWC-003.mp4"]
    for record in out:
        data = Path(record["path"]).read_bytes()
        assert record["status"] == "recorded"
        assert record["blake3"] == blake3.blake3(data).hexdigest()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["size"] == len(data)
    stored = stored_files(initialized.home)
    assert len(stored) == 3
    for path in stored:
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        assert blake3.blake3(path.read_bytes()).hexdigest() == path.name
    events = initialized.json("log")
    assert [e["action"] for e in events] == ["ingested"] * 3
    assert all(e["actor"] == "tech-0412" and e["details"]["note"] == "dock 3" for e in events)
    assert all(e["details"]["retention"]["mode"] == "COMPLIANCE" for e in events)


def test_same_bytes_again_is_an_acquisition_not_a_second_copy(initialized: Custody, clip_dir: Path, tmp_path: Path) -> None:
    first = clip_dir / "BWC-001.mp4"
    copy = tmp_path / "copy of BWC-001.mp4"
    copy.write_bytes(first.read_bytes())
    assert initialized("ingest", str(first)).exit_code == 0
    again = initialized("ingest", str(copy), "--json")
    assert again.exit_code == 0, again.output
    assert records(again)[0]["status"] == "already-stored"
    assert len(stored_files(initialized.home)) == 1
    events = initialized.json("log")
    assert [e["action"] for e in events] == ["ingested", "acquired"]
    assert events[1]["details"]["source"]["path"] == str(copy)
    assert events[1]["subject"] == events[0]["subject"]


def test_retention_is_ninety_days_from_ingest_and_enforced(initialized: Custody, clip_dir: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from storage.errors import RetentionViolation
    from storage.local import LocalStore

    result = initialized("ingest", str(clip_dir / "BWC-002.mp4"), "--json")
    digest = records(result)[0]["blake3"]
    shown = initialized.json("show", digest[:10])
    until = datetime.fromisoformat(shown["retention"]["until"].replace("Z", "+00:00"))
    expected = datetime.now(timezone.utc) + timedelta(days=90)
    assert abs((until - expected).total_seconds()) < 120
    store = LocalStore(initialized.home / "store")
    with pytest.raises(RetentionViolation):
        store.delete(shown["store_key"], shown["version"])
    assert (initialized.home / "store" / "objects" / shown["store_key"]).exists()


def test_nonexistent_and_empty_directory_exit_2_but_the_rest_is_ingested(
    initialized: Custody, clip_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "no such file.mp4"
    result = initialized("ingest", str(missing), str(empty), str(clip_dir / "BWC-001.mp4"), "--json")
    assert result.exit_code == 2
    out = by_path(result)
    assert out[str(missing)]["status"] == "skipped" and "no such file" in out[str(missing)]["reason"]
    assert out[str(empty)]["status"] == "skipped" and "no files" in out[str(empty)]["reason"]
    assert out[str(clip_dir / "BWC-001.mp4")]["status"] == "recorded"
    assert str(missing) in result.stderr and str(empty) in result.stderr
    assert len(initialized.json("log")) == 1


def test_zero_byte_file_is_preserved_with_a_warning(initialized: Custody, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    result = initialized("ingest", str(empty), "--json")
    assert result.exit_code == 0
    record = records(result)[0]
    assert record["status"] == "recorded" and record["size"] == 0
    assert record["blake3"] == blake3.blake3(b"").hexdigest()
    assert "zero-byte" in result.stderr and str(empty) in result.stderr


def test_fifo_socket_and_device_are_skipped_without_being_read(initialized: Custody, tmp_path: Path, clips: list[Path]) -> None:
    folder = tmp_path / "dock"
    folder.mkdir()
    fifo = folder / "pipe"
    os.mkfifo(fifo)
    sock_path = folder / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    (folder / "real.mp4").write_bytes(clips[0].read_bytes())
    try:
        result = initialized("ingest", str(folder), "/dev/null", "--json")
    finally:
        server.close()
    assert result.exit_code == 2
    out = by_path(result)
    assert out[str(fifo)]["status"] == "skipped" and "FIFO" in out[str(fifo)]["reason"]
    assert out[str(sock_path)]["status"] == "skipped" and "socket" in out[str(sock_path)]["reason"]
    assert out["/dev/null"]["status"] == "skipped" and "device" in out["/dev/null"]["reason"]
    assert out[str(folder / "real.mp4")]["status"] == "recorded"


def test_broken_symlink_and_symlink_loop(initialized: Custody, tmp_path: Path, clips: list[Path]) -> None:
    broken = tmp_path / "broken.mp4"
    broken.symlink_to(tmp_path / "gone.mp4")
    loop_a, loop_b = tmp_path / "loop_a", tmp_path / "loop_b"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    good = tmp_path / "link-to-clip.mp4"
    good.symlink_to(clips[1])
    result = initialized("ingest", str(broken), str(loop_a), str(good), "--json")
    assert result.exit_code == 2
    out = by_path(result)
    assert "broken symbolic link" in out[str(broken)]["reason"]
    assert "loop" in out[str(loop_a)]["reason"]
    assert out[str(good)]["status"] == "recorded"
    assert out[str(good)]["sha256"] == hashlib.sha256(clips[1].read_bytes()).hexdigest()


def test_same_file_given_twice_is_read_once(initialized: Custody, clip_dir: Path) -> None:
    clip = clip_dir / "BWC-003.mp4"
    result = initialized("ingest", str(clip_dir), str(clip), "--json")
    assert result.exit_code == 2
    out = records(result)
    assert [r["status"] for r in out] == ["recorded", "recorded", "recorded", "skipped"]
    assert "given earlier" in out[3]["reason"]
    assert len(initialized.json("log")) == 3


def test_awkward_names_are_preserved_and_reported_exactly(initialized: Custody, tmp_path: Path) -> None:
    names = ["with space.mp4", "new\nline.mp4", "Ünïcödé-録画.mp4"]
    folder = tmp_path / "names"
    folder.mkdir()
    for index, name in enumerate(names):
        (folder / name).write_bytes(f"clip {index}".encode())
    result = initialized("ingest", str(folder), "--json")
    assert result.exit_code == 0, result.output
    assert sorted(Path(r["path"]).name for r in records(result)) == sorted(names)
    events = initialized.json("log")
    assert sorted(e["details"]["source"]["name"] for e in events) == sorted(names)
    assert initialized("ledger", "verify").exit_code == 0


def _unprivileged(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the command line so that file permissions apply to it: as root, without the
    capabilities that let root read and write past them."""
    command = [sys.executable, "-m", "cli.main", *args]
    if os.getuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    root = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        command, env={**os.environ, **env, "PYTHONPATH": root}, capture_output=True, text=True, cwd="/", timeout=120
    )


@pytest.fixture
def open_dir(tmp_path: Path) -> Path:
    return tmp_path


def test_unreadable_file_is_reported_and_the_rest_ingested(open_dir: Path) -> None:
    home = open_dir / "home"
    env = {"CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "tech"}
    assert _unprivileged(["init"], env).returncode == 0
    secret = open_dir / "locked.mp4"
    secret.write_bytes(b"unreadable")
    secret.chmod(0o000)
    fine = open_dir / "fine.mp4"
    fine.write_bytes(b"readable")
    fine.chmod(0o644)
    result = _unprivileged(["ingest", str(secret), str(fine), "--json"], env)
    assert result.returncode == 2, result.stderr
    out = {r["path"]: r for r in json.loads(result.stdout)}
    assert out[str(secret)]["status"] == "failed" and "ermission denied" in out[str(secret)]["reason"]
    assert out[str(fine)]["status"] == "recorded"
    assert str(secret) in result.stderr


def test_data_directory_not_writable_exits_5_naming_it(open_dir: Path) -> None:
    home = open_dir / "readonly-home"
    home.mkdir()
    home.chmod(0o555)
    result = _unprivileged(["init"], {"CUSTODY_HOME": str(home)})
    assert result.returncode == 5, result.stderr
    assert str(home) in result.stderr and "not writable" in result.stderr
    assert not (home / "signing.key").exists()


def test_not_initialized_exits_5_with_what_to_do(custody: Custody, clips: list[Path]) -> None:
    result = custody("ingest", str(clips[0]))
    assert result.exit_code == 5
    assert "custody init" in result.stderr


def test_locked_database_waits_then_fails_clearly_and_the_rerun_records(initialized: Custody, clips: list[Path]) -> None:
    holder = sqlite3.connect(initialized.home / "custody.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = initialized("ingest", str(clips[2]), env={"CUSTODY_DB_TIMEOUT": "0.5"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 5
    assert "locked by another writer" in result.stderr
    assert len(stored_files(initialized.home)) == 1, "the bytes are preserved before the ledger is written"
    rerun = initialized("ingest", str(clips[2]), "--json")
    assert rerun.exit_code == 0, rerun.output
    assert records(rerun)[0]["status"] == "recorded"
    event = initialized.json("log")[0]
    assert "recovered" in event["details"]
    assert len(stored_files(initialized.home)) == 1

"""Every command: help with an example, exact exit codes, parsed --json, ledger side effects."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import blake3
import click
import pytest

from cli.main import cli
from tests.conftest import Custody, require_tool


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(_walk(command, path))
    return found


@pytest.mark.parametrize("path", _walk(cli), ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(custody: Custody, path: tuple[str, ...]) -> None:
    result = custody(*path, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "custody " + " ".join(path[:1]) in result.stdout.split("Examples:")[1]


def test_top_level_help_lists_exit_codes(custody: Custody) -> None:
    result = custody("--help")
    assert result.exit_code == 0
    for code in ("0  ok", "3  integrity finding", "4  refused", "5  store, database"):
        assert code in result.stdout


def test_init_is_idempotent_and_never_replaces_the_key(custody: Custody) -> None:
    first = custody.json("init")
    key = (custody.home / "signing.key").read_text()
    assert stat.S_IMODE((custody.home / "signing.key").stat().st_mode) == 0o600
    assert key.startswith("PRIVATE+KEY+")
    assert first["key_created"] is True and first["database_created"] is True
    second = custody.json("init")
    assert second["key_created"] is False and second["database_created"] is False
    assert (custody.home / "signing.key").read_text() == key
    assert second["verifier_key"] == first["verifier_key"]


def test_hash_output_is_accepted_by_b3sum_and_sha256sum(custody: Custody, clip_dir: Path) -> None:
    b3sum = require_tool("b3sum")
    names = sorted(p.name for p in clip_dir.iterdir())
    cwd = os.getcwd()
    os.chdir(clip_dir)
    try:
        b3 = custody("hash", *names)
        sha = custody("hash", "--sha256", *names)
    finally:
        os.chdir(cwd)
    assert b3.exit_code == 0 and sha.exit_code == 0
    (clip_dir / "B3SUMS").write_text(b3.stdout)
    (clip_dir / "SHA256SUMS").write_text(sha.stdout)
    assert subprocess.run([b3sum, "-c", "B3SUMS"], cwd=clip_dir, capture_output=True).returncode == 0
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=clip_dir, capture_output=True).returncode == 0
    first = clip_dir / names[0]
    first.write_bytes(first.read_bytes() + b"!")
    assert subprocess.run([b3sum, "-c", "B3SUMS"], cwd=clip_dir, capture_output=True).returncode != 0
    assert b3.stdout.splitlines()[0] == f"{blake3.blake3((clip_dir / names[0]).read_bytes()[:-1]).hexdigest()}  {names[0]}"


def test_hash_starts_without_boto3_or_sqlalchemy(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"abc")
    code = (
        "import sys\n"
        "from cli.main import cli\n"
        f"sys.argv = ['custody', 'hash', {str(target)!r}]\n"
        "try:\n    cli.main(prog_name='custody')\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('boto3', 'botocore', 'sqlalchemy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert blake3.blake3(b"abc").hexdigest() in out.stdout


def test_packages_import(tmp_path: Path) -> None:
    import cli.main
    import custody.ledger.database
    import storage.local

    assert cli.main.cli.name == "cli"
    assert custody.ledger.database.GENESIS == "0" * 64
    assert storage.local.LocalStore.capabilities.worm == "program"


def _ingest(custody: Custody, *paths: Path) -> list[dict]:
    result = custody("ingest", *map(str, paths), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_verify_by_prefix_and_by_file(initialized: Custody, clips: list[Path], tmp_path: Path) -> None:
    [record] = _ingest(initialized, clips[0])
    by_prefix = initialized("verify", record["blake3"][:8], "--json")
    assert by_prefix.exit_code == 0
    assert json.loads(by_prefix.stdout)[0]["ok"] is True
    by_file = json.loads(initialized("verify", str(clips[0]), "--json").stdout)[0]
    assert by_file["ok"] is True and by_file["file_matches"] is True
    other = tmp_path / "not-preserved.mp4"
    other.write_bytes(clips[0].read_bytes()[:-1])
    result = initialized("verify", str(other), record["blake3"][:12], "--json")
    assert result.exit_code == 3
    out = json.loads(result.stdout)
    assert out[0]["ok"] is False and out[0]["findings"][0]["kind"] == "not-preserved"
    assert out[1]["ok"] is True


def test_verify_reports_every_altered_or_missing_object(initialized: Custody, clips: list[Path]) -> None:
    records = _ingest(initialized, *clips)
    objects = initialized.home / "store" / "objects" / "evidence"
    altered = objects / records[0]["blake3"]
    altered.chmod(0o644)
    data = bytearray(altered.read_bytes())
    data[1000] ^= 0x01
    altered.write_bytes(bytes(data))
    missing = objects / records[1]["blake3"]
    missing.chmod(0o644)
    missing.unlink()
    result = initialized("verify", *(r["blake3"][:10] for r in records), "--json")
    assert result.exit_code == 3
    out = json.loads(result.stdout)
    assert out[0]["findings"][0]["kind"] == "mismatch"
    assert out[0]["findings"][0]["expected"] == records[0]["blake3"]
    assert out[0]["findings"][0]["found"] == blake3.blake3(bytes(data)).hexdigest()
    assert out[1]["findings"][0]["kind"] == "missing"
    assert out[2]["ok"] is True
    human = initialized("verify", records[0]["blake3"][:10])
    assert human.exit_code == 3 and "mismatch" in human.stderr


def test_verify_bad_references_exit_2(initialized: Custody, clips: list[Path]) -> None:
    _ingest(initialized, clips[0])
    for ref, words in (("abc", "at least 8"), ("zzzzzzzzzz", "not a BLAKE3"), ("00000000", "no preserved object")):
        result = initialized("verify", ref)
        assert result.exit_code == 2, ref
        assert words in result.stderr


def test_ambiguous_prefix_is_refused(initialized: Custody) -> None:
    db = sqlite3.connect(initialized.home / "custody.db")
    for digest in ("deadbeef" + "0" * 56, "deadbeef" + "1" * 56):
        db.execute(
            "INSERT INTO evidence (blake3, sha256, size, store_key, version, first_seq) VALUES (?, ?, 1, 'k', 'v', 0)",
            (digest, digest),
        )
    db.commit()
    db.close()
    result = initialized("verify", "deadbeef")
    assert result.exit_code == 2
    assert "more than one" in result.stderr


def test_show_json_has_digests_key_and_acquisitions(initialized: Custody, clips: list[Path]) -> None:
    [record] = _ingest(initialized, clips[1])
    _ingest(initialized, clips[1])
    shown = initialized.json("show", record["blake3"][:9])
    assert shown["blake3"] == record["blake3"] and shown["sha256"] == record["sha256"]
    assert shown["size"] == clips[1].stat().st_size
    assert shown["store_key"] == f"evidence/{record['blake3']}"
    assert [a["action"] for a in shown["acquisitions"]] == ["ingested", "acquired"]
    assert shown["retention"]["mode"] == "COMPLIANCE"
    human = initialized("show", str(clips[1]))
    assert human.exit_code == 0 and record["sha256"] in human.stdout


def test_log_json_fields_and_leaf_recomputes_the_hash(initialized: Custody, clips: list[Path]) -> None:
    import hashlib

    _ingest(initialized, clips[0], clips[1])
    events = initialized.json("log")
    assert [e["seq"] for e in events] == [0, 1]
    for event in events:
        for field in ("seq", "time", "actor", "action", "subject", "details", "prev_hash", "hash", "leaf"):
            assert field in event
        assert event["time"].endswith("Z")
        assert hashlib.sha256(b"\x00" + event["leaf"].encode("utf-8")).hexdigest() == event["hash"]
    assert events[0]["prev_hash"] == "0" * 64 and events[1]["prev_hash"] == events[0]["hash"]
    only_one = initialized.json("log", events[1]["subject"]["evidence"][:12])
    assert [e["seq"] for e in only_one] == [1]


def test_ledger_triggers_refuse_update_and_delete(initialized: Custody, clips: list[Path]) -> None:
    _ingest(initialized, clips[0])
    db = sqlite3.connect(initialized.home / "custody.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE events SET actor = 'someone else'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM events")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM evidence")
    db.close()


def test_ledger_verify_names_the_event_changed_behind_the_triggers(initialized: Custody, clips: list[Path]) -> None:
    _ingest(initialized, *clips)
    assert initialized("ledger", "verify").exit_code == 0
    db = sqlite3.connect(initialized.home / "custody.db")
    db.execute("DROP TRIGGER events_no_update")
    db.execute("UPDATE events SET details = replace(details, 'tech-0412', 'x') WHERE seq = 1")
    db.execute("UPDATE events SET actor = 'someone-else' WHERE seq = 1")
    db.commit()
    db.close()
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    subjects = [f["subject"] for f in report["findings"]]
    assert subjects[0] == "event 1" and "merkle tree" in subjects
    assert "checkpoint 1" not in subjects and "checkpoint 3" in subjects
    human = initialized("ledger", "verify")
    assert human.exit_code == 3 and "event 1" in human.stderr


def test_the_console_script_flushes_its_output_and_keeps_exit_codes(tmp_path: Path) -> None:
    """main() ends the process with os._exit: output must still be complete, codes unchanged."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root, "PYTHONUNBUFFERED": ""}
    files = []
    for i in range(300):
        path = tmp_path / f"f{i:03d}"
        path.write_bytes(str(i).encode())
        files.append(str(path))
    run = [sys.executable, "-c", "from cli.main import main; main()"]
    ok = subprocess.run([*run, "hash", *files], capture_output=True, text=True, env=env)
    assert ok.returncode == 0
    lines = ok.stdout.splitlines()
    assert len(lines) == 300 and lines[-1].startswith(blake3.blake3(b"299").hexdigest())
    missing = subprocess.run([*run, "hash", str(tmp_path / "nope")], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "nope" in missing.stderr
    usage = subprocess.run([*run, "no-such-command"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "No such command" in usage.stderr


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    files = []
    for i in range(3000):
        path = tmp_path / f"clip-{i:04d}.mp4"
        path.write_bytes(str(i).encode())
        files.append(str(path))
    writer = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", "hash", *files],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert writer.stdout is not None and writer.stderr is not None
    first = writer.stdout.readline()
    writer.stdout.close()  # like `| head -1`
    err = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == 141
    assert first.decode().endswith("clip-0000.mp4\n")
    assert "internal error" not in err and "Traceback" not in err

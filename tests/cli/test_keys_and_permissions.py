"""The signing key and the data directory: a lost key is never silently replaced, a readable key
is refused, and the data directory and database are private."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.conftest import Custody


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ingest_without_the_key_says_the_file_was_stored_and_recorded(initialized: Custody, clips: list[Path]) -> None:
    assert initialized("ingest", str(clips[0])).exit_code == 0
    key = initialized.home / "signing.key"
    key.unlink()
    result = initialized("ingest", str(clips[1]), "--json")
    assert result.exit_code == 5
    [record] = json.loads(result.stdout)
    assert record["status"] == "recorded"
    assert "1 file(s) WERE stored and recorded in the ledger" in result.stderr
    assert f"event {record['seq']}: {clips[1]} (BLAKE3 {record['blake3']})" in result.stderr
    assert f"no signing key at {key}: the signing key is missing" in result.stderr
    assert "restore the key file from backup" in result.stderr
    assert "custody ledger checkpoint" in result.stderr
    assert "run 'custody init'" not in result.stderr
    log = initialized.json("log")
    assert [e["action"] for e in log] == ["ingested", "ingested"]


def test_init_refuses_to_replace_a_lost_key_of_a_ledger_with_checkpoints(initialized: Custody, clips: list[Path]) -> None:
    assert initialized("ingest", str(clips[0])).exit_code == 0
    key = initialized.home / "signing.key"
    verifier = (initialized.home / "verifier.key").read_text()
    key.unlink()
    result = initialized("init")
    assert result.exit_code == 5
    assert f"the signing key {key} is missing" in result.stderr
    assert "1 checkpoint(s) signed with it" in result.stderr
    assert "no new key was made" in result.stderr
    assert "restore the key file from backup" in result.stderr
    assert not key.exists()
    assert (initialized.home / "verifier.key").read_text() == verifier
    # the old checkpoints still verify once the key file is back
    assert initialized("ledger", "verify").exit_code == 0


def test_init_refuses_a_new_key_once_the_verifier_key_was_published(initialized: Custody) -> None:
    (initialized.home / "signing.key").unlink()
    result = initialized("init")
    assert result.exit_code == 5
    assert "its verifier key" in result.stderr
    assert not (initialized.home / "signing.key").exists()


def test_a_readable_signing_key_is_refused_with_the_chmod(initialized: Custody, clips: list[Path]) -> None:
    key = initialized.home / "signing.key"
    key.chmod(0o644)
    result = initialized("ingest", str(clips[0]))
    assert result.exit_code == 5
    assert f"the signing key {key} is readable by other users (mode 0644)" in result.stderr
    assert f"chmod 600 {key}" in result.stderr
    again = initialized("init")
    assert again.exit_code == 5 and f"chmod 600 {key}" in again.stderr
    key.chmod(0o600)
    assert initialized("ledger", "checkpoint").exit_code == 0


def test_init_makes_the_data_directory_and_database_private(custody: Custody) -> None:
    custody.home.mkdir(mode=0o755)
    custody.home.chmod(0o755)
    assert custody("init").exit_code == 0
    assert mode(custody.home) == 0o700
    assert mode(custody.home / "custody.db") & 0o077 == 0
    assert mode(custody.home / "signing.key") == 0o600


def test_opening_a_workspace_makes_an_opened_up_data_directory_private_again(initialized: Custody, clips: list[Path]) -> None:
    initialized.home.chmod(0o755)
    (initialized.home / "custody.db").chmod(0o644)
    assert initialized("ingest", str(clips[0])).exit_code == 0
    assert mode(initialized.home) == 0o700
    assert mode(initialized.home / "custody.db") == 0o600


def test_audit_on_a_read_only_data_directory_is_exit_5_not_an_internal_error(initialized: Custody, clips: list[Path]) -> None:
    import os
    import subprocess
    import sys

    assert initialized("ingest", str(clips[0])).exit_code == 0
    for path in [initialized.home, *initialized.home.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    command = [sys.executable, "-m", "cli.main", "audit"]
    if os.getuid() == 0:  # root writes past permissions unless it drops that capability
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    root = str(Path(__file__).resolve().parents[2])
    try:
        done = subprocess.run(command, env={**os.environ, **initialized.env, "PYTHONPATH": root},
                              capture_output=True, text=True, cwd="/", timeout=120)
    finally:
        for path in [initialized.home, *initialized.home.rglob("*")]:
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)
    assert done.returncode == 5, done.stderr
    assert "custody: error: cannot write to the local store" in done.stderr
    assert "Permission denied" in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr

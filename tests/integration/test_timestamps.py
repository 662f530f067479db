"""RFC 3161 timestamps on checkpoints from a real local TSA (OpenSSL's 'openssl ts -reply' behind
infra/dev/tsa-server.py), checked with 'openssl ts -verify' as an outsider would."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Custody, require_tool
from tests.integration.witnesses import TsaProcess


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[TsaProcess]:
    require_tool("openssl")
    process = TsaProcess(tmp_path / "tsa").start()
    yield process
    process.stop()


def _clip(tmp_path: Path, n: int) -> Path:
    path = tmp_path / f"clip-{n}.mp4"
    path.write_bytes(f"footage {n} ".encode() * 400)
    return path


def _openssl_verify(data: Path, token: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(data), "-in", str(token), "-CAfile", str(ca)],
        capture_output=True, text=True,
    )


def test_every_checkpoint_gets_a_token_that_openssl_ts_verifies(initialized: Custody, tsa: TsaProcess, tmp_path: Path) -> None:
    (initialized.home / "config.toml").write_text("[anchors]\n" + tsa.config())
    for n in range(2):
        result = initialized("ingest", str(_clip(tmp_path, n)))
        assert result.exit_code == 0 and "warning" not in result.stderr, result.output
    objects = initialized.home / "store" / "objects"
    with sqlite3.connect(initialized.home / "custody.db") as db:
        rows = db.execute("SELECT size, kind, issuer, store_key FROM checkpoint_anchors ORDER BY size").fetchall()
    assert [(size, kind, issuer) for size, kind, issuer, _ in rows] == [(1, "rfc3161", tsa.url), (2, "rfc3161", tsa.url)]
    for size, _kind, _issuer, key in rows:
        checkpoint = objects / "checkpoints" / f"{size:016d}"
        token = objects / key
        assert key.endswith(".tsr") and key.startswith(f"anchors/{size:016d}/")
        verified = _openssl_verify(checkpoint, token, tsa.ca)
        assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr
        other = tmp_path / "other-checkpoint"
        other.write_bytes(checkpoint.read_bytes().replace(b"\n", b"\n ", 1))
        refused = _openssl_verify(other, token, tsa.ca)
        assert refused.returncode != 0 and "Verification: FAILED" in refused.stdout
    report = json.loads(initialized("ledger", "verify", "--json").stdout)
    assert report["ok"] is True and report["anchors"]["timestamps"] == 2 and report["anchors"]["without_timestamp"] == []
    assert "2 RFC 3161 timestamp(s) verified" in initialized("ledger", "verify").stdout


def test_a_tsa_that_is_down_is_a_warning_and_the_token_of_a_foreign_ca_is_a_finding(
    initialized: Custody, tsa: TsaProcess, tmp_path: Path
) -> None:
    (initialized.home / "config.toml").write_text("[anchors]\n" + tsa.config())
    assert initialized("ingest", str(_clip(tmp_path, 0))).exit_code == 0
    tsa.stop()
    down = initialized("ingest", str(_clip(tmp_path, 1)))
    assert down.exit_code == 0
    assert f"the time-stamping authority {tsa.url} is unreachable" in down.stderr
    assert "checkpoint 2 has no timestamp yet" in down.stderr
    report = initialized("ledger", "verify", "--json")
    assert report.exit_code == 0 and json.loads(report.stdout)["anchors"]["without_timestamp"] == [2]
    other = TsaProcess(tmp_path / "other-tsa")
    subprocess.run([str(Path(__file__).resolve().parents[2] / "infra" / "dev" / "tsa-ca.sh"), str(other.directory)], check=True)
    (initialized.home / "config.toml").write_text(
        "[anchors]\n" + tsa.config().replace(str(tsa.ca), str(other.ca))
    )
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 3
    messages = [f["message"] for f in json.loads(result.stdout)["findings"]]
    assert len(messages) == 1 and messages[0].startswith(f"its RFC 3161 timestamp from {tsa.url}: the timestamp token does not verify")

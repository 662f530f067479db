"""Packages carry what outsiders hold: the witnesses' cosignatures (required by verify-package
--trust-witness / --witness-quorum), the RFC 3161 token (checked by 'openssl ts -verify' as the
package README says, and by --tsa-ca), and the key rotations that lead from a pinned key to
the key that signed the checkpoint. Two real witnesses and a real TSA on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Custody, require_tool
from tests.integration.witnesses import TsaProcess, WitnessProcess, anchors_config

INCIDENT = "2026-1101-ICE-07"


@pytest.fixture(scope="module")
def anchored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_tool("openssl")
    base = tmp_path_factory.mktemp("anchored")
    home = base / "home"
    custody = Custody(home, {"CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "tech-0412", "CUSTODY_DB": "", "CUSTODY_STORE": ""})
    assert custody("init").exit_code == 0
    first_key = custody("ledger", "key").stdout.strip()
    witnesses = [WitnessProcess(base / f"w{n}", f"witness.example/w{n}").init(first_key).start() for n in (1, 2)]
    tsa = TsaProcess(base / "tsa").start()
    try:
        (home / "config.toml").write_text(anchors_config(witnesses, 2, extra=tsa.config()))
        clip = base / "clip.mp4"
        clip.write_bytes(b"body camera footage " * 2000)
        for args in (
            ["incident", "create", INCIDENT, "--occurred-at", "2026-11-01T14:03:00-06:00", "--agency", "ICE"],
            ["ingest", str(clip), "--incident", INCIDENT],
        ):
            result = custody(*args)
            assert result.exit_code == 0 and "warning" not in result.stderr, (args, result.output)
        rotated = custody("ledger", "rotate-key", "--json")
        assert rotated.exit_code == 0, rotated.output
        new_key = json.loads(rotated.stdout)["new_key"]
        for witness in witnesses:
            witness.stop()
            from tests.integration.witnesses import custody_cli

            assert custody_cli("witness", "add-log", new_key, "--dir", str(witness.directory), home=base).returncode == 0
            witness.start()
        out = base / "pkg"
        result = custody("export", "--incident", INCIDENT, "--out", str(out), "--no-contact-sheets", "--json")
        assert result.exit_code == 0 and "warning" not in result.stderr, result.output
        yield {"custody": custody, "bag": out, "first_key": first_key, "new_key": new_key, "witnesses": witnesses, "tsa": tsa, "base": base}
    finally:
        for witness in witnesses:
            witness.stop()
        tsa.stop()


def _verify(custody: Custody, bag: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = custody("verify-package", str(bag), "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_the_package_carries_cosignatures_token_and_rotations_and_verifies_with_a_quorum(anchored: dict[str, Any]) -> None:
    custody, bag, tsa = anchored["custody"], anchored["bag"], anchored["tsa"]
    w1, w2 = (w.vkey for w in anchored["witnesses"])
    for name in ("custody/cosignatures.txt", "custody/checkpoint.tsr", "custody/tsa-ca.pem", "custody/key-rotations.jsonl"):
        assert (bag / name).is_file(), name
    assert (bag / "custody" / "cosignatures.txt").read_text().count("\u2014 witness.example/w") == 2
    code, report = _verify(custody, bag, "--trust-key", anchored["first_key"], "--trust-witness", w1, "--trust-witness", w2,
                           "--witness-quorum", "2", "--tsa-ca", str(tsa.ca))
    assert code == 0, report["findings"]
    anchors = report["anchors"]
    assert anchors["rotations_followed"] == 1 and len(anchors["cosigned_by"]) == 2 and anchors["timestamp"]
    assert report["key_trusted"] is True and report["key"] == anchored["new_key"]
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["key rotations"]["detail"].startswith("1 rotation(s) followed from the trusted key")


def test_the_readme_command_openssl_ts_verify_accepts_the_token(anchored: dict[str, Any]) -> None:
    bag, tsa = anchored["bag"], anchored["tsa"]
    readme = (bag / "README.txt").read_text()
    command = "openssl ts -verify -data custody/checkpoint.txt -in custody/checkpoint.tsr -CAfile tsa-ca.pem"
    assert command in readme
    shutil.copy(tsa.ca, anchored["base"] / "tsa-ca.pem")
    done = subprocess.run(command.replace("tsa-ca.pem", str(anchored["base"] / "tsa-ca.pem")).split(), cwd=bag,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stderr


def test_too_few_cosignatures_for_the_quorum_is_a_finding(anchored: dict[str, Any], tmp_path: Path) -> None:
    custody, bag = anchored["custody"], anchored["bag"]
    w1, w2 = (w.vkey for w in anchored["witnesses"])
    stranger = WitnessProcess(tmp_path / "w3", "witness.example/w3").init()
    code, report = _verify(custody, bag, "--trust-witness", w1, "--trust-witness", stranger.vkey, "--witness-quorum", "2")
    assert code == 3
    assert [f["message"] for f in report["findings"]] == ["1 of the trusted witnesses cosigned the checkpoint; 2 required"]
    code, _ = _verify(custody, bag, "--trust-witness", w1, "--trust-witness", stranger.vkey, "--witness-quorum", "1")
    assert code == 0
    copy = tmp_path / "pkg"
    shutil.copytree(bag, copy)
    (copy / "custody" / "cosignatures.txt").chmod(0o644)
    (copy / "custody" / "cosignatures.txt").write_text("")
    code, report = _verify(custody, copy, "--trust-witness", w1, "--trust-witness", w2)
    assert code == 3
    messages = [f["message"] for f in report["findings"]]
    assert "0 of the trusted witnesses cosigned the checkpoint; 2 required" in messages


def test_a_token_from_another_authority_or_over_other_bytes_is_a_finding(anchored: dict[str, Any], tmp_path: Path) -> None:
    custody, bag = anchored["custody"], anchored["bag"]
    other = tmp_path / "other-ca"
    subprocess.run([str(Path(__file__).resolve().parents[2] / "infra" / "dev" / "tsa-ca.sh"), str(other)], check=True)
    code, report = _verify(custody, bag, "--tsa-ca", str(other / "ca.pem"))
    assert code == 3
    assert any(f["subject"] == "custody/checkpoint.tsr" and "does not verify" in f["message"] for f in report["findings"])


def test_without_the_rotations_the_first_key_does_not_reach_the_new_one(anchored: dict[str, Any], tmp_path: Path) -> None:
    custody, bag = anchored["custody"], anchored["bag"]
    copy = tmp_path / "pkg"
    shutil.copytree(bag, copy)
    rotations = copy / "custody" / "key-rotations.jsonl"
    record = json.loads(rotations.read_text())
    record["note"] = record["note"].replace("custody key rotation/v1", "custody key rotation/v1 ", 1)
    rotations.chmod(0o644)
    rotations.write_text(json.dumps(record) + "\n")
    code, report = _verify(custody, copy, "--trust-key", anchored["first_key"])
    assert code == 3
    subjects = {f["subject"] for f in report["findings"]}
    assert "custody/key-rotations.jsonl" in subjects and "custody/verifier.key" in subjects

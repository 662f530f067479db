"""The checkpoints' origin (the signing key's name) is a schema-less URL from the settings, not
the host name, and it is stored with the key, never recomputed."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import Custody


def _custody(home: Path) -> Custody:
    return Custody(home, {"CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "tech-0412", "CUSTODY_DB": "", "CUSTODY_STORE": ""})


def test_the_configured_origin_names_the_key_and_every_checkpoint(tmp_path: Path) -> None:
    custody = _custody(tmp_path / "home")
    custody.home.mkdir()
    (custody.home / "config.toml").write_text('[ledger]\norigin = "evidence.example-city.gov/custody"\n')
    assert custody("init").exit_code == 0
    key = custody("ledger", "key").stdout.strip()
    assert key.startswith("evidence.example-city.gov/custody+")
    (tmp_path / "clip").write_bytes(b"clip")
    assert custody("ingest", str(tmp_path / "clip")).exit_code == 0
    checkpoint = custody("ledger", "checkpoint").stdout
    assert checkpoint.startswith("evidence.example-city.gov/custody\n")
    (custody.home / "config.toml").write_text('[ledger]\norigin = "another.example/log"\n')
    assert custody("ledger", "key").stdout.strip() == key
    assert custody("ledger", "verify").exit_code == 0


def test_without_configuration_the_origin_is_stable_and_not_the_host_name(tmp_path: Path) -> None:
    custody = _custody(tmp_path / "home")
    assert custody("init").exit_code == 0
    name = custody("ledger", "key").stdout.split("+", 1)[0]
    assert name.startswith("custody.invalid/") and len(name.split("/")[1]) == 8
    assert socket.gethostname() not in name


def test_an_origin_that_is_not_a_schema_less_url_is_refused(tmp_path: Path) -> None:
    custody = _custody(tmp_path / "home")
    custody.home.mkdir()
    (custody.home / "config.toml").write_text('[ledger]\norigin = "https://example.org/log"\n')
    result = custody("init")
    assert result.exit_code == 5 and "schema-less URL" in result.stderr
    assert not (custody.home / "signing.key").exists()

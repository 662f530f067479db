"""The ledger's checkpoint signing key in an HSM: SoftHSM2 through PKCS#11."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from custody.ledger.checkpoint import Verifier, open_checkpoint
from tests.conftest import Custody
from tests.integration.conftest import SoftHsm

pytestmark = pytest.mark.integration


@pytest.fixture
def token(softhsm: SoftHsm) -> dict[str, str]:
    return {"module": softhsm.module, "pin": str(softhsm.pins["custody-ledger"]), "conf": str(softhsm.conf)}


def _uri(token: dict[str, str], label: str, pin: str | None = None) -> str:
    return (f"pkcs11:token=custody-ledger;object={label}?module-path={token['module']}"
            f"&pin-source=file:{pin or token['pin']}")


def test_checkpoints_are_signed_by_the_key_in_the_token(custody: Custody, token: dict[str, str], tmp_path: Path) -> None:
    made = custody("init", "--hsm", _uri(token, "ledger-a"), "--json")
    assert made.exit_code == 0, made.output
    key_file = (custody.home / "signing.key").read_text()
    assert key_file.startswith("pkcs11:token=custody-ledger;object=ledger-a?") and "PRIVATE" not in key_file
    verifier = Verifier.from_text((custody.home / "verifier.key").read_text().strip())
    assert json.loads(made.stdout)["verifier_key"] == verifier.to_text()
    (tmp_path / "a.bin").write_bytes(b"evidence")
    assert custody("ingest", str(tmp_path / "a.bin")).exit_code == 0
    note = custody("ledger", "checkpoint").stdout
    checkpoint, _ = open_checkpoint(note, [verifier], origin=verifier.name)
    assert checkpoint.size == 1
    report = custody.json("ledger", "verify")
    assert report["ok"] is True and report["checkpoints_in_store"] == 1
    again = custody("init", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["verifier_key"] == verifier.to_text()


def test_the_private_key_never_leaves_the_token(custody: Custody, token: dict[str, str]) -> None:
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    assert custody("init", "--hsm", _uri(token, "ledger-b")).exit_code == 0
    lib = pkcs11.lib(token["module"])
    with lib.get_token(token_label="custody-ledger").open(user_pin="2468") as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS, label="ledger-b")
        assert private[Attribute.SENSITIVE] is True and private[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.PKCS11Error):
            private[Attribute.VALUE]


def test_a_wrong_pin_is_exit_5_and_names_the_token(custody: Custody, token: dict[str, str], tmp_path: Path) -> None:
    assert custody("init", "--hsm", _uri(token, "ledger-c")).exit_code == 0
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000\n")
    key_file = custody.home / "signing.key"
    os.chmod(key_file, 0o600)
    key_file.write_text(key_file.read_text().replace(token["pin"], str(wrong)))
    (tmp_path / "b.bin").write_bytes(b"more evidence")
    result = custody("ingest", str(tmp_path / "b.bin"))
    assert result.exit_code == 5
    assert "cannot log in to the PKCS#11 token 'custody-ledger'" in result.stderr and "check the PIN" in result.stderr

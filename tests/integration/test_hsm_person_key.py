"""A person's event-signing key in an HSM: an administrator whose Ed25519 key lives in SoftHSM2,
used through PKCS#11 (``--key pkcs11:...``), whose SSH signatures stock ssh-keygen verifies."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from custody.ledger import sshsig
from custody.ledger.signatures import Pkcs11SshSigner
from tests.conftest import Custody, require_tool
from tests.integration.conftest import SoftHsm

pytestmark = pytest.mark.integration

TOKEN = "custody-people"


def _generate(custody: Custody, uri: str) -> str:
    made = custody("actor", "pubkey", "--generate", "--key", uri)
    assert made.exit_code == 0, made.output
    return made.stdout.strip()


def _technician_key(directory: Path) -> Path:
    path = directory / "tech-1"
    subprocess.run([require_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "tech-1", "-f", str(path)],
                   check=True)
    return path


def test_an_admin_key_in_the_token_enrolls_a_technician_and_ssh_keygen_verifies_it(
    custody: Custody, softhsm: SoftHsm, tmp_path: Path
) -> None:
    admin_uri = softhsm.uri(TOKEN, "admin-a")
    line = _generate(custody, admin_uri)
    public = sshsig.PublicKey.parse(line)
    again = custody.json("actor", "pubkey", "--key", admin_uri)
    assert again == {"key": line, "fingerprint": public.fingerprint}

    made = custody("init", "--admin", "admin-1", "--admin-key", admin_uri, "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["admin"]["fingerprint"] == public.fingerprint

    tech = _technician_key(tmp_path)
    enrolled = custody("--key", admin_uri, "actor", "enroll", "tech-1", "--role", "technician",
                       "--key-file", str(tech) + ".pub", "--json")
    assert enrolled.exit_code == 0, enrolled.output
    event = custody.json("log")[-1]
    assert (event["action"], event["actor"], event["role"]) == ("actor-enrolled", "admin-1", "admin")
    assert event["details"]["name"] == "tech-1"

    (tmp_path / "allowed_signers").write_text(custody("actor", "allowed-signers").stdout)
    shown = custody("actor", "signature", str(event["seq"]), "--bytes", str(tmp_path / "event.bytes"))
    assert shown.exit_code == 0, shown.output
    (tmp_path / "event.sig").write_text(shown.stdout)
    assert sshsig.parse(shown.stdout).public_key == public
    verify = [require_tool("ssh-keygen"), "-Y", "verify", "-f", str(tmp_path / "allowed_signers"), "-n", "custody-event",
              "-s", str(tmp_path / "event.sig")]
    with (tmp_path / "event.bytes").open("rb") as stdin:
        good = subprocess.run([*verify, "-I", "admin-1"], stdin=stdin, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert 'Good "custody-event" signature for admin-1 with ED25519 key ' + public.fingerprint in good.stdout
    (tmp_path / "event.bytes").write_bytes((tmp_path / "event.bytes").read_bytes().replace(b"tech-1", b"tech-2"))
    with (tmp_path / "event.bytes").open("rb") as stdin:
        altered = subprocess.run([*verify, "-I", "admin-1"], stdin=stdin, capture_output=True, text=True)
    assert altered.returncode != 0

    (tmp_path / "a.bin").write_bytes(b"footage")
    assert custody("--key", str(tech), "ingest", str(tmp_path / "a.bin")).exit_code == 0
    report = custody.json("ledger", "verify")
    assert report["ok"] is True
    assert report["actors"]["signers"] == {"admin-1": 3, "tech-1": 1} and report["actors"]["unsigned"] == 0
    assert report["actors"]["roles_set"] == [1], "init recorded the roles as the administrator's act, signed in the token"


def test_the_admin_key_shares_a_token_with_the_ledgers_key(custody: Custody, softhsm: SoftHsm, tmp_path: Path) -> None:
    """Both keys in one token: the person's signing session and the ledger's checkpoint signing
    log in to the same token in one process."""
    admin_uri = softhsm.uri("custody-ledger", "admin-shared")
    _generate(custody, admin_uri)
    made = custody("init", "--hsm", softhsm.uri("custody-ledger", "ledger-shared"),
                   "--admin", "admin-1", "--admin-key", admin_uri, "--json")
    assert made.exit_code == 0, made.output
    enrolled = custody("--key", admin_uri, "actor", "enroll", "aud-1", "--role", "auditor",
                       "--key-file", str(_technician_key(tmp_path)) + ".pub")
    assert enrolled.exit_code == 0, enrolled.output
    assert custody("ledger", "checkpoint").exit_code == 0
    report = custody.json("ledger", "verify")
    assert report["ok"] is True and report["actors"]["signers"] == {"admin-1": 3}


def test_the_private_key_is_made_in_the_token_and_cannot_leave_it(custody: Custody, softhsm: SoftHsm) -> None:
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    _generate(custody, softhsm.uri(TOKEN, "admin-b"))
    lib = pkcs11.lib(softhsm.module)
    with lib.get_token(token_label=TOKEN).open(user_pin="1357") as opened:
        private = opened.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS, label="admin-b")
        assert private[Attribute.SENSITIVE] is True and private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True and private[Attribute.LOCAL] is True
        with pytest.raises(pkcs11.PKCS11Error):
            private[Attribute.VALUE]


def test_a_key_that_cannot_be_reached_is_exit_5_naming_the_uri_without_the_pin(
    custody: Custody, softhsm: SoftHsm, tmp_path: Path
) -> None:
    admin_uri = softhsm.uri(TOKEN, "admin-c")
    _generate(custody, admin_uri)
    assert custody("init", "--admin", "admin-1", "--admin-key", admin_uri).exit_code == 0
    (tmp_path / "a.bin").write_bytes(b"footage")
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("9999\n")

    cases = {
        "wrong PIN": (softhsm.uri(TOKEN, "admin-c", pin=wrong), "cannot log in to the PKCS#11 token 'custody-people'"),
        "PIN given in the URI": (softhsm.uri(TOKEN, "admin-c").split("&pin-source")[0] + "&pin-value=8642",
                                 "cannot log in to the PKCS#11 token 'custody-people'"),
        "missing token": (softhsm.uri(TOKEN, "admin-c").replace(f"token={TOKEN}", "token=no-such-token"),
                          "no PKCS#11 token labelled 'no-such-token'"),
        "missing object": (softhsm.uri(TOKEN, "no-such-key"), "no Ed25519 key 'no-such-key' in the PKCS#11 token"),
    }
    for case, (uri, message) in cases.items():
        result = custody("--key", uri, "ingest", str(tmp_path / "a.bin"))
        assert result.exit_code == 5, (case, result.output)
        assert message in result.stderr, (case, result.stderr)
        shown = uri.replace("&pin-value=8642", "")
        assert shown in result.stderr, (case, result.stderr)
        assert "8642" not in result.stderr and "9999" not in result.stderr and "1357" not in result.stderr, case
    assert custody.json("log")[-1]["action"] == "roles-set", "nothing was appended after init's events"


def test_signing_through_the_token_takes_one_session_per_transaction(softhsm: SoftHsm, custody: Custody) -> None:
    uri = softhsm.uri(TOKEN, "admin-speed")
    _generate(custody, uri)
    signer = Pkcs11SshSigner.load("admin-1", uri)
    messages = [f'{{"seq":{n},"action":"ingested"}}'.encode() for n in range(200)]
    started = time.perf_counter()
    signatures = signer.sign_many(messages)
    batched = time.perf_counter() - started
    for message, armored in zip(messages, signatures, strict=True):
        sshsig.verify(armored, message, signer.public_key)
    started = time.perf_counter()
    for message in messages[:20]:
        signer.sign_many([message])
    one_by_one = (time.perf_counter() - started) / 20
    print(f"\nSoftHSM2 SSHSIG signing: {len(messages) / batched:.0f} signatures/s in one session; "
          f"{1 / one_by_one:.0f} transactions/s of one event each (a session and login each)")
    assert len(messages) / batched > 200

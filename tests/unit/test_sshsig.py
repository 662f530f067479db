"""SSH signatures (SSHSIG) as custody makes and reads them, checked against OpenSSH's ssh-keygen."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.ledger import sshsig
from custody.ledger.signatures import FileKeySigner, SshKeygenSigner
from tests.conftest import require_tool


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keygen = require_tool("ssh-keygen")
    path = tmp_path_factory.mktemp("keys") / "tech"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "tech", "-f", str(path)], check=True)
    return path


def test_custody_signature_verifies_with_ssh_keygen(key: Path, tmp_path: Path) -> None:
    signer = FileKeySigner.load("tech-1", key)
    message = b'{"action":"ingested","seq":3}'
    (tmp_path / "event.bytes").write_bytes(message)
    (tmp_path / "event.sig").write_text(signer.sign_many([message])[0])
    (tmp_path / "allowed").write_text(f'tech-1 namespaces="custody-event" {signer.public_key.line}\n')
    with (tmp_path / "event.bytes").open("rb") as stdin:
        run = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "tech-1", "-n", "custody-event",
             "-s", str(tmp_path / "event.sig")], stdin=stdin, capture_output=True, text=True,
        )
    assert run.returncode == 0, run.stderr
    assert 'Good "custody-event" signature for tech-1' in run.stdout
    (tmp_path / "event.bytes").write_bytes(message + b" ")
    with (tmp_path / "event.bytes").open("rb") as stdin:
        bad = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "tech-1", "-n", "custody-event",
             "-s", str(tmp_path / "event.sig")], stdin=stdin, capture_output=True, text=True,
        )
    assert bad.returncode != 0 and "Good" not in bad.stdout


def test_ssh_keygen_signatures_verify_here_and_a_batch_is_one_per_message(key: Path) -> None:
    signer = SshKeygenSigner.load("tech-1", key)
    messages = [b"first event", b"second event", b""]
    signatures = signer.sign_many(messages)
    assert len(signatures) == 3
    for message, armored in zip(messages, signatures):
        sshsig.verify(armored, message, signer.public_key)
    with pytest.raises(sshsig.SshSigError, match="does not verify"):
        sshsig.verify(signatures[0], messages[1], signer.public_key)
    with pytest.raises(sshsig.SshSigError, match="namespace"):
        sshsig.parse(signatures[0]).verify(messages[0], namespace="file")


def test_fingerprint_is_ssh_keygen_s(key: Path) -> None:
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(key) + ".pub"], capture_output=True, text=True, check=True)
    public = sshsig.PublicKey.parse((Path(str(key) + ".pub")).read_text())
    assert listed.stdout.split()[1] == public.fingerprint
    assert FileKeySigner.load("x", key).public_key == public


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=10_000), flip=st.integers(min_value=1, max_value=255))
def test_changing_any_byte_of_the_message_breaks_the_signature(key: Path, position: int, flip: int) -> None:
    signer = FileKeySigner.load("tech-1", key)
    message = b'{"action":"hold-placed","actor":"sup-1","seq":12,"details":{"hold":"SAO-26-1"}}'
    armored = signer.sign_many([message])[0]
    changed = bytearray(message)
    changed[position % len(message)] ^= flip
    with pytest.raises(sshsig.SshSigError):
        sshsig.verify(armored, bytes(changed), signer.public_key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN SSH SIGNATURE-----\n" + "QUFB" * 2000 + "\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAf////8=\n-----END SSH SIGNATURE-----\n",
    ],
)
def test_malformed_signatures_are_sshsig_errors(text: str) -> None:
    with pytest.raises(sshsig.SshSigError):
        sshsig.parse(text)


@pytest.mark.parametrize(
    "line",
    ["ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "ssh-ed25519", "ssh-ed25519 !!!", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA=="],
)
def test_public_keys_other_than_ed25519_or_malformed_are_refused(line: str) -> None:
    with pytest.raises(sshsig.SshSigError):
        sshsig.PublicKey.parse(line)

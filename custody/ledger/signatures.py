"""Per-event signatures: a person's SSH signature (``custody.ledger.sshsig``) over an event's
canonical bytes, stored beside the event in ``event_signatures``.

Signers:

- ``FileKeySigner``: an unencrypted OpenSSH private key file, signed in this process.
- ``SshKeygenSigner``: ``ssh-keygen -Y sign -f KEY -n custody-event``, so the key can stay in
  ssh-agent or on a hardware token (give the ``.pub`` file: ssh-keygen asks the agent) and
  never enters custody. One ssh-keygen run signs every event of a transaction.
- ``Pkcs11SshSigner``: a key in a PKCS#11 token (``--key 'pkcs11:token=...;object=...?...'``,
  ``custody.ledger.hsm``): custody builds each SSHSIG signed-data blob and the token signs it
  (CKM_EDDSA), all of a transaction's events in one session of the token.

``Ledger.event_signer`` takes either; the ledger then signs each transaction's events before it
commits. Which signatures count (who was enrolled, with which role, at that point in the log) is
decided above the ledger, in ``custody.actors``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from custody.errors import BadInput, ConfigError
from custody.ledger import sshsig
from custody.ledger.database import Ledger
from custody.ledger.hsm import URI_PREFIX, Pkcs11Uri, TokenKey
from custody.ledger.tables import event_signatures
from custody.ledger.transaction import EventSigner as EventSigner
from custody.ledger.transaction import reading

MAX_KEY_FILE = 16384


def read_key_file(path: Path, what: str) -> str:
    """A key file's text: a regular file, bounded in size, not followed out through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise BadInput(f"cannot read the {what} {path}: {exc.strerror}; give the path of an OpenSSH key file") from exc
    with os.fdopen(fd, "rb") as handle:
        import stat

        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise BadInput(f"the {what} {path} is not a regular file")
        data = handle.read(MAX_KEY_FILE + 1)
    if len(data) > MAX_KEY_FILE:
        raise BadInput(f"the {what} {path} is larger than any OpenSSH key file")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadInput(f"the {what} {path} is not an OpenSSH key file (not ASCII)") from exc


def read_public_key(path: Path) -> sshsig.PublicKey:
    """The Ed25519 public key in an OpenSSH ``.pub`` file."""
    try:
        return sshsig.PublicKey.parse(read_key_file(path, "public key").strip())
    except sshsig.SshSigError as exc:
        raise BadInput(f"{path}: {exc}") from exc


@dataclass
class FileKeySigner:
    """Signs with an unencrypted OpenSSH Ed25519 private key file, in this process."""

    name: str
    public_key: sshsig.PublicKey
    _key: object

    @classmethod
    def load(cls, name: str, path: Path) -> FileKeySigner:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_ssh_private_key

        text = read_key_file(path, "private key")
        try:
            key = load_ssh_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError) as exc:
            raise BadInput(
                f"{path}: not an unencrypted OpenSSH private key ({exc}); for a key with a passphrase, "
                "in ssh-agent or on a token, give its .pub file (signing goes through ssh-keygen)"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise BadInput(f"{path}: custody signs with ssh-ed25519 keys only")
        return cls(name, sshsig.PublicKey.of(key), key)

    def sign_many(self, messages: Sequence[bytes]) -> list[str]:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        assert isinstance(self._key, Ed25519PrivateKey)
        return [sshsig.sign(self._key, message) for message in messages]


@dataclass
class SshKeygenSigner:
    """Signs through ``ssh-keygen -Y sign``: ``key_path`` is a private key file, or the ``.pub``
    of a key held by ssh-agent (``SSH_AUTH_SOCK``) or a hardware token."""

    name: str
    public_key: sshsig.PublicKey
    key_path: Path
    program: str = "ssh-keygen"
    timeout: float = 120.0

    @classmethod
    def load(cls, name: str, key_path: Path) -> SshKeygenSigner:
        program = shutil.which("ssh-keygen")
        if program is None:
            raise ConfigError("ssh-keygen is not installed (Debian: openssh-client); it signs events with your key")
        pub = key_path if key_path.name.endswith(".pub") else key_path.with_name(key_path.name + ".pub")
        return cls(name, read_public_key(pub), key_path, program)

    def sign_many(self, messages: Sequence[bytes]) -> list[str]:
        if not messages:
            return []
        with tempfile.TemporaryDirectory(prefix="custody-sign-") as directory:
            paths = []
            for index, message in enumerate(messages):
                path = Path(directory) / f"event-{index}"
                path.write_bytes(message)
                paths.append(path)
            try:
                run = subprocess.run(
                    [self.program, "-q", "-Y", "sign", "-f", str(self.key_path), "-n", sshsig.NAMESPACE,
                     *[str(p) for p in paths]],
                    capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ConfigError(f"ssh-keygen could not sign with {self.key_path}: {exc}") from exc
            if run.returncode != 0:
                raise ConfigError(
                    f"ssh-keygen could not sign with {self.key_path}: {run.stderr.strip()[:400]}; "
                    "is the key loaded in ssh-agent (ssh-add) or the token present?"
                )
            signatures = []
            for path, message in zip(paths, messages, strict=True):
                armored = Path(str(path) + ".sig").read_text(encoding="ascii")
                try:
                    sshsig.verify(armored, message, self.public_key)
                except sshsig.SshSigError as exc:
                    raise ConfigError(f"ssh-keygen signed with another key than {self.key_path}: {exc}") from exc
                signatures.append(armored)
        return signatures


@dataclass
class Pkcs11SshSigner:
    """Signs with an Ed25519 key held in a PKCS#11 token (``custody.ledger.hsm.TokenKey``): the
    token signs each SSHSIG signed-data blob, custody armours the signature."""

    name: str
    public_key: sshsig.PublicKey
    key: TokenKey

    @classmethod
    def load(cls, name: str, uri_text: str, *, create: bool = False) -> Pkcs11SshSigner:
        uri = Pkcs11Uri.parse(uri_text)
        key = TokenKey.open(uri, create=create, missing=(
            "; generate it in the token with 'custody actor pubkey --generate --key URI', or check the token and object names"))
        return cls(name, sshsig.PublicKey(key.public_key), key)

    def sign_many(self, messages: Sequence[bytes]) -> list[str]:
        raw = self.key.sign_many([sshsig.signed_data(message) for message in messages])
        signatures = []
        for message, signature in zip(messages, raw, strict=True):
            try:
                armored = sshsig.assemble(self.public_key, signature)
                sshsig.verify(armored, message, self.public_key)
            except sshsig.SshSigError as exc:
                raise ConfigError(f"the PKCS#11 key {self.key.uri.shown} did not make a valid signature: {exc}") from exc
            signatures.append(armored)
        return signatures


def is_token_key(key: Path | str) -> bool:
    """Whether ``key`` names a key in a PKCS#11 token (an RFC 7512 ``pkcs11:`` URI)."""
    return str(key).startswith(URI_PREFIX)


def load_signer(name: str, key_path: Path | str) -> EventSigner:
    """A signer for ``key_path``: the token's key for a ``pkcs11:`` URI; in-process for an
    unencrypted private key file; through ssh-keygen for a ``.pub`` (agent, token) or a
    passphrase-protected key."""
    if is_token_key(key_path):
        return Pkcs11SshSigner.load(name, str(key_path))
    key_path = Path(key_path)
    if key_path.name.endswith(".pub"):
        return SshKeygenSigner.load(name, key_path)
    text = read_key_file(key_path, "private key")
    if "BEGIN OPENSSH PRIVATE KEY" not in text:
        raise BadInput(f"{key_path}: not an OpenSSH private key (nor a .pub of a key in ssh-agent)")
    try:
        return FileKeySigner.load(name, key_path)
    except BadInput:
        return SshKeygenSigner.load(name, key_path)


def key_of(key_path: Path | str) -> sshsig.PublicKey:
    """The public key of ``key_path`` (a ``.pub``, a private key whose ``.pub`` or own content
    gives it, or a ``pkcs11:`` URI naming a key in a token)."""
    if not is_token_key(key_path) and Path(key_path).name.endswith(".pub"):
        return read_public_key(Path(key_path))
    return load_signer("", key_path).public_key


@dataclass(frozen=True)
class StoredSignature:
    seq: int
    signer: str
    key_fingerprint: str
    signature: str


def stored_signatures(ledger: Ledger, start: int = 0, batch: int = 5000) -> Iterator[StoredSignature]:
    """Every stored event signature from event ``start`` on, in event order."""
    position = start
    with reading(ledger) as conn:
        while True:
            rows = conn.execute(
                select(event_signatures)
                .where(event_signatures.c.seq >= position)
                .order_by(event_signatures.c.seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            for row in rows:
                yield StoredSignature(row.seq, row.signer, row.key_fingerprint, row.signature)
            position = rows[-1].seq + 1

"""SSH signatures (the SSHSIG format of OpenSSH's PROTOCOL.sshsig) over ledger events, with
Ed25519 keys: what ``ssh-keygen -Y sign -n custody-event`` makes and ``ssh-keygen -Y verify``
checks.

A signature commits to a namespace (``custody-event`` for events), a hash algorithm (SHA-512
here, as ssh-keygen uses) and the message's digest; the armored form is base64 between
``-----BEGIN SSH SIGNATURE-----`` and ``-----END SSH SIGNATURE-----``. Everything read here comes
from outside (a database row, a package): malformed input raises ``SshSigError``, never anything
else, and every length is bounded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

NAMESPACE = "custody-event"
"""The SSHSIG namespace of custody event signatures (``ssh-keygen -Y ... -n custody-event``)."""

MAGIC = b"SSHSIG"
VERSION = 1
ED25519 = "ssh-ed25519"
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
MAX_ARMORED = 4096
"""An Ed25519 SSH signature is about 300 characters armored; anything far longer is refused."""
MAX_KEY_LINE = 2048


class SshSigError(ValueError):
    """A malformed public key line or SSH signature, or one that does not verify."""


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise SshSigError("truncated SSH data")
        chunk = self.data[self.at:self.at + count]
        self.at += count
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        try:
            return self.string().decode("ascii")
        except UnicodeDecodeError as exc:
            raise SshSigError("non-ASCII name in SSH data") from exc

    def end(self) -> None:
        if self.at != len(self.data):
            raise SshSigError("trailing bytes after SSH data")


@dataclass(frozen=True)
class PublicKey:
    """An OpenSSH Ed25519 public key (``ssh-ed25519 AAAA... comment``)."""

    raw: bytes
    """The 32-byte Ed25519 public key."""

    @property
    def blob(self) -> bytes:
        """The SSH wire encoding: string "ssh-ed25519", string key."""
        return _string(ED25519.encode()) + _string(self.raw)

    @property
    def line(self) -> str:
        """``ssh-ed25519 BASE64`` (no comment): what allowed_signers and enrollment records hold."""
        return f"{ED25519} {base64.b64encode(self.blob).decode('ascii')}"

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` exactly as ``ssh-keygen -l`` prints it."""
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode("ascii").rstrip("=")

    @classmethod
    def from_blob(cls, blob: bytes) -> PublicKey:
        reader = _Reader(blob)
        kind = reader.text()
        if kind != ED25519:
            raise SshSigError(f"key type {kind!r} is not supported; custody enrolls ssh-ed25519 keys")
        raw = reader.string()
        reader.end()
        if len(raw) != 32:
            raise SshSigError("an ssh-ed25519 key is 32 bytes")
        return cls(raw)

    @classmethod
    def parse(cls, line: str) -> PublicKey:
        """Parse an OpenSSH public key line (``ssh-ed25519 BASE64 [comment]``)."""
        if len(line) > MAX_KEY_LINE:
            raise SshSigError("public key line too long")
        fields = line.strip().split()
        if len(fields) < 2:
            raise SshSigError("not an OpenSSH public key line (expected 'ssh-ed25519 AAAA... [comment]')")
        if fields[0] != ED25519:
            raise SshSigError(f"key type {fields[0][:40]!r} is not supported; custody enrolls ssh-ed25519 keys")
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SshSigError("the public key's base64 is malformed") from exc
        return cls.from_blob(blob)

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey) -> PublicKey:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return cls(private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def signed_data(message: bytes, namespace: str = NAMESPACE) -> bytes:
    """What the key actually signs: MAGIC, namespace, reserved, "sha512", SHA-512(message)."""
    return (
        MAGIC
        + _string(namespace.encode("ascii"))
        + _string(b"")
        + _string(b"sha512")
        + _string(hashlib.sha512(message).digest())
    )


def armor(blob: bytes) -> str:
    text = base64.b64encode(blob).decode("ascii")
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def assemble(public_key: PublicKey, signature: bytes, namespace: str = NAMESPACE) -> str:
    """The armored SSH signature around ``signature``, an Ed25519 signature by ``public_key`` of
    ``signed_data(message, namespace)`` (made here, by ssh-agent or by a PKCS#11 token)."""
    if len(signature) != 64:
        raise SshSigError("an Ed25519 signature is 64 bytes")
    blob = (
        MAGIC
        + struct.pack(">I", VERSION)
        + _string(public_key.blob)
        + _string(namespace.encode("ascii"))
        + _string(b"")
        + _string(b"sha512")
        + _string(_string(ED25519.encode()) + _string(signature))
    )
    return armor(blob)


def sign(private_key: Ed25519PrivateKey, message: bytes, namespace: str = NAMESPACE) -> str:
    """An armored SSH signature of ``message``, as ``ssh-keygen -Y sign -n NAMESPACE`` makes it."""
    return assemble(PublicKey.of(private_key), private_key.sign(signed_data(message, namespace)), namespace)


@dataclass(frozen=True)
class SshSignature:
    """A parsed SSH signature."""

    public_key: PublicKey
    namespace: str
    hash_algorithm: str
    signature: bytes

    def verify(self, message: bytes, namespace: str = NAMESPACE) -> None:
        """Raise ``SshSigError`` unless this is a valid signature of ``message`` in ``namespace``."""
        if self.namespace != namespace:
            raise SshSigError(f"signature namespace is {self.namespace!r}, not {namespace!r}")
        if self.hash_algorithm == "sha512":
            digest = hashlib.sha512(message).digest()
        elif self.hash_algorithm == "sha256":
            digest = hashlib.sha256(message).digest()
        else:
            raise SshSigError(f"unknown signature hash algorithm {self.hash_algorithm!r}")
        data = (
            MAGIC
            + _string(namespace.encode("ascii"))
            + _string(b"")
            + _string(self.hash_algorithm.encode("ascii"))
            + _string(digest)
        )
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key.raw).verify(self.signature, data)
        except InvalidSignature as exc:
            raise SshSigError("the signature does not verify over these bytes") from exc


def parse(armored: str) -> SshSignature:
    """Parse an armored SSH signature (Ed25519 only). Raises ``SshSigError`` if malformed."""
    if len(armored) > MAX_ARMORED:
        raise SshSigError("SSH signature too long")
    lines = [line.strip() for line in armored.strip().splitlines()]
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise SshSigError("not an armored SSH signature (-----BEGIN SSH SIGNATURE----- ... END)")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SshSigError("the SSH signature's base64 is malformed") from exc
    reader = _Reader(blob)
    if reader.take(6) != MAGIC:
        raise SshSigError("not an SSHSIG blob")
    version = reader.uint32()
    if version != VERSION:
        raise SshSigError(f"SSHSIG version {version} is not supported")
    public_key = PublicKey.from_blob(reader.string())
    namespace = reader.text()
    reader.string()
    hash_algorithm = reader.text()
    inner = _Reader(reader.string())
    reader.end()
    kind = inner.text()
    if kind != ED25519:
        raise SshSigError(f"signature type {kind!r} is not supported")
    signature = inner.string()
    inner.end()
    if len(signature) != 64:
        raise SshSigError("an Ed25519 signature is 64 bytes")
    return SshSignature(public_key, namespace, hash_algorithm, signature)


def verify(armored: str, message: bytes, public_key: PublicKey, namespace: str = NAMESPACE) -> None:
    """Raise ``SshSigError`` unless ``armored`` is ``public_key``'s signature of ``message``."""
    parsed = parse(armored)
    if parsed.public_key != public_key:
        raise SshSigError(f"signed by {parsed.public_key.fingerprint}, not by {public_key.fingerprint}")
    parsed.verify(message, namespace)

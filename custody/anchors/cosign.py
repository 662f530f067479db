"""C2SP tlog-cosignature v1 with Ed25519 (https://c2sp.org/tlog-cosignature).

A cosignature is a signed-note signature line ``— <name> base64(key ID || timestamp || sig)``
whose key ID is SHA-256(name || 0x0A || 0x04 || public key)[:4], whose timestamp is a big-endian
u64 of POSIX seconds, and whose Ed25519 signature covers::

    cosignature/v1
    time <timestamp>
    <the checkpoint body, with its final newline>

Key texts follow the signed-note vkey layout with signature type 0x04:

* verifier: ``<name>+<8 hex key ID>+<base64(0x04 || 32-byte public key)>``
* signer:   ``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x04 || 32-byte seed)>``

Every error raised for untrusted input is a :class:`CosignatureError`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.ledger import notes

ALG_COSIGNATURE_V1: Final = 0x04
HEADER: Final = "cosignature/v1"
SIG_PREFIX: Final = "\u2014 "
_PRIVATE: Final = "PRIVATE+KEY+"
_HEX8: Final = re.compile(r"[0-9a-f]{8}")
_MAX_TIMESTAMP: Final = (1 << 63) - 1
_BLOB_SIZE: Final = 4 + 8 + 64


class CosignatureError(ValueError):
    """A cosigner key, a cosignature line or a cosignature is malformed or does not verify."""


_b64, _unb64 = notes.b64encode, notes.b64decode  # strict: canonical base64 only


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() or ord(c) < 0x20 for c in name):
        raise CosignatureError(f"invalid cosigner name {name!r}")


def key_id(name: str, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def signed_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosignature signs: header line, time line, then the checkpoint body."""
    return f"{HEADER}\ntime {timestamp}\n".encode("utf-8") + body.encode("utf-8")


def _split(text: str) -> tuple[str, int, bytes]:
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise CosignatureError("a cosigner key has the form name+keyid+base64")
    name, id_hex, material = parts
    _check_name(name)
    if not _HEX8.fullmatch(id_hex):
        raise CosignatureError(f"key ID {id_hex!r} is not 8 lowercase hex digits")
    blob = _unb64(material)
    if blob is None or len(blob) != 33:
        raise CosignatureError("key material is not canonical base64 of 33 bytes")
    if blob[0] != ALG_COSIGNATURE_V1:
        raise CosignatureError(f"key type 0x{blob[0]:02x} is not 0x04 (Ed25519 cosignature/v1)")
    return name, int(id_hex, 16), blob[1:]


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: who (``name``, ``key_id``), when (``timestamp``), and its line."""

    name: str
    key_id: int
    timestamp: int
    line: str


@dataclass(frozen=True)
class CosignerVerifier:
    """A witness's public key (type 0x04)."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def from_text(cls, text: str) -> CosignerVerifier:
        name, kid, public = _split(text)
        if key_id(name, public) != kid:
            raise CosignatureError(f"key ID {kid:08x} does not match the name and public key")
        try:
            Ed25519PublicKey.from_public_bytes(public)
        except ValueError as exc:
            raise CosignatureError("invalid Ed25519 public key") from exc
        return cls(name, kid, public)

    def to_text(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([ALG_COSIGNATURE_V1]) + self.public_key)}"

    def verify_line(self, line: str, body: str) -> Cosignature:
        """Verify one signature line (with or without its final newline) over checkpoint
        ``body``. Raises :class:`CosignatureError` when the line is not from this key or does
        not verify."""
        text = line.rstrip("\n")
        if not text.startswith(SIG_PREFIX):
            raise CosignatureError("a signature line starts with an em dash and a space")
        name, sep, material = text[len(SIG_PREFIX):].partition(" ")
        blob = _unb64(material) if sep else None
        if blob is None or len(blob) != _BLOB_SIZE:
            raise CosignatureError("malformed cosignature line")
        kid = int.from_bytes(blob[:4], "big")
        if name != self.name or kid != self.key_id:
            raise CosignatureError(f"the line is by {name}+{kid:08x}, not {self.name}+{self.key_id:08x}")
        timestamp = int.from_bytes(blob[4:12], "big")
        if timestamp > _MAX_TIMESTAMP:
            raise CosignatureError("cosignature timestamp exceeds 2^63 - 1")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(blob[12:], signed_message(body, timestamp))
        except InvalidSignature as exc:
            raise CosignatureError(f"the cosignature by {self.name}+{self.key_id:08x} does not verify") from exc
        return Cosignature(name, kid, timestamp, text + "\n")

    def find(self, lines: str, body: str) -> Cosignature | None:
        """The first line in ``lines`` by this key that verifies over ``body``; lines by other
        keys are ignored. Raises :class:`CosignatureError` when a line by this key fails."""
        for line in lines.splitlines():
            if not line.startswith(SIG_PREFIX):
                continue
            name, _, material = line[len(SIG_PREFIX):].partition(" ")
            blob = _unb64(material)
            if name != self.name or blob is None or len(blob) < 4 or int.from_bytes(blob[:4], "big") != self.key_id:
                continue
            return self.verify_line(line, body)
        return None


class Cosigner:
    """A witness's private key. ``repr`` never shows the seed."""

    __slots__ = ("_key", "verifier")

    def __init__(self, name: str, seed: bytes) -> None:
        _check_name(name)
        if len(seed) != 32:
            raise CosignatureError("an Ed25519 seed is 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._key.public_key().public_bytes_raw()
        self.verifier = CosignerVerifier(name, key_id(name, public), public)

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_text(cls, text: str) -> Cosigner:
        text = text.strip()
        if not text.startswith(_PRIVATE):
            raise CosignatureError("a cosigner private key starts with PRIVATE+KEY+")
        name, kid, seed = _split(text[len(_PRIVATE):])
        signer = cls(name, seed)
        if signer.verifier.key_id != kid:
            raise CosignatureError(f"key ID {kid:08x} does not match the key")
        return signer

    def __repr__(self) -> str:
        return f"Cosigner({self.verifier.name!r}, {self.verifier.key_id:08x})"

    @property
    def name(self) -> str:
        return self.verifier.name

    def to_text(self) -> str:
        seed = self._key.private_bytes_raw()
        return f"{_PRIVATE}{self.name}+{self.verifier.key_id:08x}+{_b64(bytes([ALG_COSIGNATURE_V1]) + seed)}"

    def cosign(self, body: str, timestamp: int) -> str:
        """The cosignature line (with its final newline) over checkpoint ``body`` at ``timestamp``."""
        if not 0 <= timestamp <= _MAX_TIMESTAMP:
            raise CosignatureError("timestamp out of range")
        signature = self._key.sign(signed_message(body, timestamp))
        blob = self.verifier.key_id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + signature
        return f"{SIG_PREFIX}{self.name} {_b64(blob)}\n"

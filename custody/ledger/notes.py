"""C2SP signed notes with Ed25519 keys: key texts, signing and opening notes.

Specifications implemented:

* signed notes: https://c2sp.org/signed-note (signature type 0x01, Ed25519)

Key text formats (as used by golang.org/x/mod/sumdb/note):

* verifier key: ``<name>+<8 hex key ID>+<base64(0x01 || 32-byte public key)>``
* signer key: ``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>``
* key ID: first 4 bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || public key)

Error contract: every exception raised for untrusted input is a subclass of
:class:`TlogError`.  Parsers are strict: base64 must be canonical standard
base64 (RFC 4648 section 4, with padding), decimals must be ASCII without
leading zeros and fit in 64 bits. Checkpoints and proofs, which are signed
notes, are in ``custody.ledger.checkpoint``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "InvalidSignature",
    "KeyFormatError",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "Signer",
    "TlogError",
    "UnverifiedNote",
    "Verifier",
    "compute_key_id",
    "generate_signer",
    "open_note",
    "sign_note",
]

ALG_ED25519: Final = 0x01
MAX_SIGNATURES: Final = 100

_SIG_PREFIX: Final = "\u2014 "
_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
_ED25519_SIG_SIZE: Final = 64
_KEY_SIZE: Final = 32
MAX_U64: Final = (1 << 64) - 1
_HEX8: Final = re.compile(r"[0-9a-f]{8}")
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")


class TlogError(Exception):
    """Base class of every error raised by this module and by ``custody.ledger.checkpoint``."""


class KeyFormatError(TlogError, ValueError):
    """A signer or verifier key text (or key name) is malformed or inconsistent."""


class NoteError(TlogError, ValueError):
    """A signed note is malformed, or a text cannot be signed as a note."""


class UnverifiedNote(TlogError):
    """No signature line of the note is from a known key.

    ``unverified`` holds the signatures from unknown keys.
    """

    def __init__(self, unverified: Sequence[NoteSignature]) -> None:
        self.unverified: tuple[NoteSignature, ...] = tuple(unverified)
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in self.unverified)
        super().__init__(f"note has no signature from a known key (unknown: {names or 'none'})")


class InvalidSignature(TlogError):
    """A signature line from a known key does not verify."""

    def __init__(self, name: str, key_id: int) -> None:
        self.name = name
        self.key_id = key_id
        super().__init__(f"invalid signature by {name}+{key_id:08x}")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes | None:
    if not text.isascii():
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if b64encode(data) != text:
        return None
    return data


def parse_u64(text: str) -> int | None:
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_U64 else None


def _is_valid_name(name: str) -> bool:
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() for c in name)
        and not CONTROL.search(name)
    )


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")


def compute_key_id(name: str, public_key: bytes) -> int:
    """Return the C2SP Ed25519 key ID of ``name`` and a 32-byte public key.

    key ID = SHA-256(name || 0x0A || 0x01 || public_key)[:4], big-endian.
    """
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()
    return int.from_bytes(digest[:4], "big")


def _split_key(text: str) -> tuple[str, int, bytes]:
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("key must have the form name+keyid+base64")
    name, id_hex, b64 = parts
    _check_name(name)
    if not _HEX8.fullmatch(id_hex):
        raise KeyFormatError(f"key ID {id_hex!r} is not 8 lowercase hex digits")
    blob = b64decode(b64)
    if blob is None:
        raise KeyFormatError("key material is not canonical base64")
    if not blob:
        raise KeyFormatError("empty key material")
    if blob[0] != ALG_ED25519:
        raise KeyFormatError(f"unsupported signature algorithm 0x{blob[0]:02x}")
    if len(blob) != 1 + _KEY_SIZE:
        raise KeyFormatError(f"key material is {len(blob)} bytes, expected {1 + _KEY_SIZE}")
    return name, int(id_hex, 16), blob[1:]


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 note verifier key: ``name``, ``key_id`` and ``public_key``.

    Construction checks the name, the 32-byte key, and that ``key_id`` is the
    C2SP key ID of the name and public key (:class:`KeyFormatError`).
    """

    name: str
    key_id: int
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != _KEY_SIZE:
            raise KeyFormatError(
                f"public key is {len(self.public_key)} bytes, expected {_KEY_SIZE}"
            )
        computed = compute_key_id(self.name, self.public_key)
        if self.key_id != computed:
            raise KeyFormatError(
                f"key ID {self.key_id:08x} does not match computed {computed:08x}"
            )
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes(self.public_key))
        except ValueError as exc:
            raise KeyFormatError("invalid Ed25519 public key") from exc
        object.__setattr__(self, "_key", key)

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> Verifier:
        """Build a verifier from a key name and a raw 32-byte public key."""
        _check_name(name)
        return cls(name, compute_key_id(name, public_key), bytes(public_key))

    @classmethod
    def from_text(cls, text: str) -> Verifier:
        """Parse ``<name>+<hex8>+<base64(0x01 || public key)>``.

        Raises :class:`KeyFormatError` for a bad name, bad base64, wrong
        length, an algorithm byte other than 0x01, or a key ID that does not
        match the name and public key.
        """
        name, key_id, public_key = _split_key(text)
        return cls(name, key_id, public_key)

    def to_text(self) -> str:
        """Return the verifier key text."""
        blob = bytes([ALG_ED25519]) + self.public_key
        return f"{self.name}+{self.key_id:08x}+{b64encode(blob)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` (64 bytes, no key ID) signs ``message``."""
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except _CryptoInvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 note signer key.  ``repr`` never shows the private seed."""

    __slots__ = ("_key", "_verifier", "name", "key_id")

    def __init__(self, name: str, seed: bytes) -> None:
        """Build a signer from a key name and a raw 32-byte Ed25519 seed."""
        _check_name(name)
        if len(seed) != _KEY_SIZE:
            raise KeyFormatError(f"seed is {len(seed)} bytes, expected {_KEY_SIZE}")
        self._key = Ed25519PrivateKey.from_private_bytes(bytes(seed))
        self._verifier = Verifier.from_public_key(name, self._key.public_key().public_bytes_raw())
        self.name: str = name
        self.key_id: int = self._verifier.key_id

    @classmethod
    def from_text(cls, text: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex8>+<base64(0x01 || seed)>``.

        Raises :class:`KeyFormatError` like :meth:`Verifier.from_text`, and
        when the key ID does not match the public key derived from the seed.
        """
        if not text.startswith(_PRIVATE_PREFIX):
            raise KeyFormatError("signer key must start with PRIVATE+KEY+")
        name, key_id, seed = _split_key(text[len(_PRIVATE_PREFIX):])
        signer = cls(name, seed)
        if signer.key_id != key_id:
            raise KeyFormatError(
                f"key ID {key_id:08x} does not match computed {signer.key_id:08x}"
            )
        return signer

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id=0x{self.key_id:08x})"

    def to_text(self) -> str:
        """Return the signer key text (contains the private seed)."""
        seed = self._key.private_bytes_raw()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_ED25519]) + seed)}"

    def verifier(self) -> Verifier:
        """Return the matching verifier."""
        return self._verifier

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)


def generate_signer(name: str) -> tuple[str, str]:
    """Generate a fresh Ed25519 key; return ``(signer_key_text, verifier_key_text)``."""
    _check_name(name)
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    signer = Signer(name, seed)
    return signer.to_text(), signer.verifier().to_text()


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key ``name``, ``key_id`` and the raw ``signature``."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """Return the signature line, including its final newline."""
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {b64encode(blob)}\n"


@dataclass(frozen=True)
class Note:
    """A note whose signatures were checked by :func:`open_note`.

    ``signatures`` are the verified signatures (at least one);
    ``unverified`` are signatures from keys not given to :func:`open_note`.
    """

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def _check_text(text: str) -> None:
    if CONTROL.search(text):
        raise NoteError("note contains an ASCII control character other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("note is not valid UTF-8") from exc


def split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("note signature block is empty or lacks a final newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    sigs: list[NoteSignature] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("malformed signature line")
        name, sep, b64 = line[len(_SIG_PREFIX):].partition(" ")
        if not sep or not _is_valid_name(name):
            raise NoteError("malformed signature line key name")
        blob = b64decode(b64)
        if blob is None or len(blob) < 5:
            raise NoteError("malformed signature line signature")
        sigs.append(NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
    return text, sigs


class NoteSigner(Protocol):
    """What signs a note: a key ``name`` and ``key_id``, and Ed25519 signatures (``Signer``, or
    a key held in an HSM: ``custody.ledger.hsm.Pkcs11NoteSigner``)."""

    name: str
    key_id: int

    def sign(self, message: bytes) -> bytes: ...

    def verifier(self) -> Verifier: ...


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """Return ``text`` signed by every signer (https://c2sp.org/signed-note).

    ``text`` must end in a newline, be valid UTF-8 and contain no ASCII
    control characters other than newline (:class:`NoteError` otherwise).
    At least one signer is required.
    """
    if not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    _check_text(text)
    if not signers:
        raise ValueError("at least one signer is required")
    if len(signers) > MAX_SIGNATURES:
        raise ValueError(f"at most {MAX_SIGNATURES} signers")
    message = text.encode("utf-8")
    lines = [NoteSignature(s.name, s.key_id, s.sign(message)).line() for s in signers]
    return text + "\n" + "".join(lines)


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note (https://c2sp.org/signed-note) and verify it.

    A signature line matches a verifier when both key name and key ID are
    equal; other lines are unverified and reported in ``Note.unverified``.
    Raises :class:`NoteError` for malformed notes, :class:`InvalidSignature`
    if any line from a known key fails to verify, and :class:`UnverifiedNote`
    if no line is from a known key.  Raises ``ValueError`` if two verifiers
    share a name and key ID but have different public keys.
    """
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        key = (v.name, v.key_id)
        if key in known and known[key].public_key != v.public_key:
            raise ValueError(f"two verifiers named {v.name}+{v.key_id:08x}")
        known[key] = v
    text, sigs = split_note(note)
    message = text.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for sig in sigs:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if not verifier.verify(message, sig.signature):
            raise InvalidSignature(sig.name, sig.key_id)
        if sig not in verified:
            verified.append(sig)
    if not verified:
        raise UnverifiedNote(unverified)
    return Note(text, tuple(verified), tuple(unverified))

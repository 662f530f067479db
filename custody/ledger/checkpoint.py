"""C2SP tlog checkpoints and tlog proofs: signed notes (``custody.ledger.notes``) about the
ledger's RFC 6962 tree.

Specifications implemented:

* checkpoints: https://c2sp.org/tlog-checkpoint
* transparency log proofs: https://c2sp.org/tlog-proof (``c2sp.org/tlog-proof@v1``)

Error contract: every exception raised for untrusted input is a subclass of
``custody.ledger.notes.TlogError``.  Parsers are strict: base64 must be canonical standard
base64, decimals must be ASCII without leading zeros and fit in 64 bits, hashes must be
exactly 32 bytes. The names of ``custody.ledger.notes`` are re-exported here, so that
``from custody.ledger import checkpoint as notes`` gives the whole format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from custody.ledger import tree
from custody.ledger.notes import (
    ALG_ED25519,
    CONTROL,
    MAX_SIGNATURES,
    MAX_U64,
    InvalidSignature,
    KeyFormatError,
    Note,
    NoteError,
    NoteSignature,
    NoteSigner,
    Signer,
    TlogError,
    UnverifiedNote,
    Verifier,
    b64decode,
    b64encode,
    compute_key_id,
    generate_signer,
    open_note,
    parse_u64,
    sign_note,
    split_note,
)

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "TLOG_PROOF_HEADER",
    "Checkpoint",
    "CheckpointError",
    "InvalidSignature",
    "KeyFormatError",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "OriginMismatch",
    "ProofFormatError",
    "ProofVerificationError",
    "Signer",
    "TlogError",
    "TlogProof",
    "UnverifiedNote",
    "VerifiedTlogProof",
    "Verifier",
    "compute_key_id",
    "format_checkpoint",
    "format_tlog_proof",
    "generate_signer",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_tlog_proof",
    "sign_checkpoint",
    "sign_note",
    "verify_tlog_proof",
]

TLOG_PROOF_HEADER: Final = "c2sp.org/tlog-proof@v1"


class CheckpointError(TlogError, ValueError):
    """A checkpoint body is malformed."""


class OriginMismatch(TlogError):
    """A checkpoint's origin is not the expected origin."""

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"checkpoint origin {actual!r}, expected {expected!r}")


class ProofFormatError(TlogError, ValueError):
    """A tlog-proof text is malformed."""


class ProofVerificationError(TlogError):
    """A well-formed tlog proof does not prove inclusion in its checkpoint."""


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog checkpoint body.

    ``origin`` is non-empty; ``size`` fits in 64 bits; ``root`` is the
    32-byte RFC 6962 root; ``extensions`` are non-empty extra lines.
    Construction validates all of it (:class:`CheckpointError`).
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not line or "\n" in line or CONTROL.search(line):
                raise CheckpointError(f"invalid checkpoint line {line!r}")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_U64:
            raise CheckpointError(f"invalid tree size {self.size!r}")
        if len(self.root) != tree.HASH_SIZE:
            raise CheckpointError("root hash must be 32 bytes")


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """Return the checkpoint note text ``origin\\nsize\\nbase64(root)\\n[ext\\n...]``."""
    lines = [checkpoint.origin, str(checkpoint.size), b64encode(checkpoint.root)]
    lines.extend(checkpoint.extensions)
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text (https://c2sp.org/tlog-checkpoint) strictly.

    Requires a final newline, at least three lines, a decimal size without
    leading zeros that fits in 64 bits, a canonical base64 32-byte root, and
    non-empty extension lines; raises :class:`CheckpointError` otherwise.
    """
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    size = parse_u64(size_text)
    if size is None:
        raise CheckpointError(f"invalid tree size {size_text!r}")
    root = b64decode(root_text)
    if root is None or len(root) != tree.HASH_SIZE:
        raise CheckpointError("root must be canonical base64 of 32 bytes")
    return Checkpoint(origin, size, root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[NoteSigner]) -> str:
    """Return the checkpoint as a signed note."""
    return sign_note(format_checkpoint(checkpoint), signers)


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[Verifier], *, origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint with :func:`open_note` and parse its text.

    ``verifiers`` should be the log's key(s): any one verified signature is
    accepted.  When ``origin`` is given the checkpoint origin must equal it
    (:class:`OriginMismatch`).
    """
    opened = open_note(note, verifiers)
    checkpoint = parse_checkpoint(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise OriginMismatch(origin, checkpoint.origin)
    return checkpoint, opened


@dataclass(frozen=True)
class TlogProof:
    """A parsed, unverified ``c2sp.org/tlog-proof@v1``.

    ``checkpoint`` is the signed checkpoint note, verbatim and unverified.
    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None


@dataclass(frozen=True)
class VerifiedTlogProof:
    """Result of :func:`verify_tlog_proof`: the entry's leaf hash is proven
    to be leaf ``index`` of the tree described by the verified ``checkpoint``.
    ``extra`` is NOT authenticated.
    """

    index: int
    leaf_hash: bytes
    checkpoint: Checkpoint
    note: Note
    extra: bytes | None


def format_tlog_proof(
    index: int,
    proof_hashes: Sequence[bytes],
    signed_checkpoint_text: str,
    extra: bytes | None = None,
) -> str:
    """Return a ``c2sp.org/tlog-proof@v1`` text (https://c2sp.org/tlog-proof).

    Layout: the header line, an optional ``extra <base64>`` line, an
    ``index <decimal>`` line, one base64 line per inclusion proof hash (leaf
    sibling first), an empty line, then the signed checkpoint verbatim.
    Raises ``ValueError`` for an index outside 64 bits or a hash that is not
    32 bytes, and :class:`NoteError` if the checkpoint is not a signed note.
    """
    if isinstance(index, bool) or not 0 <= index <= MAX_U64:
        raise ValueError(f"invalid leaf index {index!r}")
    if any(len(h) != tree.HASH_SIZE for h in proof_hashes):
        raise ValueError("proof hashes must be 32 bytes")
    split_note(signed_checkpoint_text)
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append(f"extra {b64encode(extra)}")
    lines.append(f"index {index}")
    lines.extend(b64encode(h) for h in proof_hashes)
    return "\n".join(lines) + "\n\n" + signed_checkpoint_text


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Parse a ``c2sp.org/tlog-proof@v1`` text strictly (https://c2sp.org/tlog-proof).

    Raises :class:`ProofFormatError` for a wrong header, a malformed extra or
    index line, a proof line that is not canonical base64 of 32 bytes, more
    than 64 proof hashes, or a checkpoint that is not a well-formed signed
    note.  No signature is verified here.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProofFormatError("proof is not valid UTF-8") from exc
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise ProofFormatError("proof has no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise ProofFormatError(f"first line must be {TLOG_PROOF_HEADER}")
    pos = 1
    extra: bytes | None = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        extra = b64decode(lines[pos][len("extra "):])
        if extra is None:
            raise ProofFormatError("extra data is not canonical base64")
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise ProofFormatError("missing index line")
    index = parse_u64(lines[pos][len("index "):])
    if index is None:
        raise ProofFormatError("invalid index")
    hashes: list[bytes] = []
    for line in lines[pos + 1 :]:
        value = b64decode(line)
        if value is None or len(value) != tree.HASH_SIZE:
            raise ProofFormatError("proof line is not canonical base64 of 32 bytes")
        hashes.append(value)
    if len(hashes) > 64:
        raise ProofFormatError("inclusion proof longer than 64 hashes")
    try:
        split_note(checkpoint)
    except NoteError as exc:
        raise ProofFormatError(f"checkpoint is not a signed note: {exc}") from exc
    return TlogProof(index, tuple(hashes), checkpoint, extra)


def verify_tlog_proof(
    proof_text: str | bytes,
    verifiers: Sequence[Verifier],
    *,
    leaf_hash: bytes | None = None,
    entry: bytes | None = None,
    origin: str | None = None,
) -> VerifiedTlogProof:
    """Verify a ``c2sp.org/tlog-proof@v1`` for one log entry (https://c2sp.org/tlog-proof).

    Give exactly one of ``leaf_hash`` (the 32-byte RFC 6962 leaf hash) or
    ``entry`` (the raw entry; its leaf hash is SHA-256(0x00 || entry)).
    Steps: parse (:class:`ProofFormatError`), verify the checkpoint signature
    against ``verifiers`` (:class:`NoteError`, :class:`InvalidSignature`,
    :class:`UnverifiedNote`), parse the checkpoint (:class:`CheckpointError`),
    check ``origin`` if given (:class:`OriginMismatch`), then verify the
    RFC 9162 inclusion proof against the checkpoint root
    (:class:`ProofVerificationError`).
    """
    if entry is not None and leaf_hash is None:
        leaf = tree.leaf_hash(entry)
    elif leaf_hash is not None and entry is None:
        leaf = leaf_hash
    else:
        raise ValueError("give exactly one of leaf_hash or entry")
    parsed = parse_tlog_proof(proof_text)
    checkpoint, note = open_checkpoint(parsed.checkpoint, verifiers, origin=origin)
    if not tree.verify_inclusion(leaf, parsed.index, checkpoint.size, parsed.proof, checkpoint.root):
        raise ProofVerificationError(
            f"inclusion proof for index {parsed.index} does not verify "
            f"against {checkpoint.origin} size {checkpoint.size}"
        )
    return VerifiedTlogProof(parsed.index, leaf, checkpoint, note, parsed.extra)

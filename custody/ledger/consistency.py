"""Consistency proofs between two sizes of the ledger's tree, in a plain text layout.

The layout is the body of a C2SP ``tlog-witness`` ``add-checkpoint`` request
(https://c2sp.org/tlog-witness): a line ``old <size>``, one line per proof hash (standard
base64, RFC 9162 section 2.1.4 order), an empty line, then the signed checkpoint of the newer
size verbatim::

    old 17
    Zm9vYmFy...
    YmF6cXV4...

    <origin>
    42
    <base64 root>

    — <key name> <base64 signature>

Anyone can check it with RFC 9162's algorithm (Go: ``golang.org/x/mod/sumdb/tlog``
``CheckTree``, or ``github.com/transparency-dev/merkle/proof.VerifyConsistency``): the root of
the older checkpoint, the proof and the root of the newer one must agree. This module is pure
except ``ledger_consistency``, which reads the ledger it is given.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custody.errors import BadInput
from custody.ledger import tree

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

MAX_PROOF = 64


@dataclass(frozen=True)
class ConsistencyProof:
    """``proof`` links the tree of ``old_size`` leaves to the one ``checkpoint`` signs."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str
    """The newer signed checkpoint, verbatim (not verified here)."""


class ConsistencyFormatError(ValueError):
    """The text is not a consistency proof in this module's layout."""


def format_consistency(old_size: int, proof: Sequence[bytes], signed_checkpoint: str) -> str:
    """The text layout of the module docstring."""
    if isinstance(old_size, bool) or old_size < 0:
        raise ValueError(f"invalid old size {old_size!r}")
    lines = [f"old {old_size}"] + [base64.b64encode(h).decode("ascii") for h in proof]
    return "\n".join(lines) + "\n\n" + signed_checkpoint


def parse_consistency(text: str) -> ConsistencyProof:
    """Parse the text layout strictly; ``ConsistencyFormatError`` for anything else. No
    signature or proof is verified here."""
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise ConsistencyFormatError("no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old ") or not first[4:].isdigit() or first[4:] != str(int(first[4:])):
        raise ConsistencyFormatError("the first line is not 'old <size>'")
    hashes: list[bytes] = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConsistencyFormatError("a proof line is not base64") from exc
        if len(value) != tree.HASH_SIZE or base64.b64encode(value).decode("ascii") != line:
            raise ConsistencyFormatError("a proof line is not the canonical base64 of 32 bytes")
        hashes.append(value)
    if len(hashes) > MAX_PROOF:
        raise ConsistencyFormatError(f"more than {MAX_PROOF} proof hashes")
    if "\n\n" not in checkpoint or not checkpoint.endswith("\n"):
        raise ConsistencyFormatError("the checkpoint is not a signed note")
    return ConsistencyProof(int(first[4:]), tuple(hashes), checkpoint)


def ledger_consistency(ledger: Ledger, old_size: int, new_size: int | None = None) -> str:
    """The consistency proof from ``old_size`` to the signed checkpoint of ``new_size`` (the
    latest checkpoint when None), in the module's text layout. ``BadInput`` when no checkpoint
    of ``new_size`` was signed, or ``old_size`` is not between 0 and it."""
    rows = {row["size"]: row for row in ledger.checkpoint_rows()}
    if not rows:
        raise BadInput("the ledger has no signed checkpoint yet; run 'custody ledger checkpoint'")
    size = max(rows) if new_size is None else new_size
    if size not in rows:
        near = ", ".join(str(s) for s in sorted(rows)[-5:])
        raise BadInput(f"NEW_SIZE {size}: no checkpoint of that size was signed (latest sizes: {near})")
    if not 0 <= old_size <= size:
        raise BadInput(f"OLD_SIZE {old_size}: must be between 0 and {size}")
    proof: list[bytes] = ledger.with_nodes(lambda nodes: tree.consistency_proof(nodes, old_size, size))
    return format_consistency(old_size, proof, str(rows[size]["note"]))

"""References to preserved objects, as commands accept them: a file (hashed, then looked up) or
a unique BLAKE3 prefix of at least 8 hex characters.

``resolve`` says which object a reference names, if any; ``resolve_preserved`` is the one way to
get the preserved object a reference names, ``BadInput`` (exit 2) when there is none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from custody.errors import BadInput
from custody.evidence.hashing import blake3_file
from custody.ledger.canonical import printable_path
from custody.ledger.database import Ledger

HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclass
class Resolved:
    ref: str
    blake3: str | None
    path: str | None = None
    """Set when the reference was a file, whose BLAKE3 is ``blake3``."""


def resolve(ledger: Ledger, ref: str) -> Resolved:
    """A file path (hashed, then looked up) or a unique BLAKE3 prefix of at least 8 hex chars.

    For a file whose bytes are not preserved, ``blake3`` is its digest and the ledger has no
    such object; for a prefix, ``BadInput`` unless exactly one object matches."""
    if os.path.isfile(ref):
        try:
            digest = blake3_file(ref)
        except OSError as exc:
            raise BadInput(f"{printable_path(ref)}: cannot read: {exc.strerror}") from exc
        return Resolved(ref, digest, path=ref)
    if os.path.isdir(ref):
        raise BadInput(f"{printable_path(ref)}: a directory with no files in it")
    if os.path.exists(ref):
        from custody.evidence.hashing import special_kind

        kind = special_kind(os.stat(ref).st_mode) or "not a regular file"
        raise BadInput(f"{printable_path(ref)}: {kind}, not a regular file; only regular files are verified")
    if not HEX.match(ref):
        raise BadInput(f"{printable_path(ref)}: no such file, and not a BLAKE3 digest prefix")
    if len(ref) < 8:
        raise BadInput(f"{ref}: a digest prefix needs at least 8 hex characters")
    matches = ledger.find_evidence(ref.lower())
    if not matches:
        raise BadInput(f"{ref}: no preserved object has a BLAKE3 digest starting with it")
    if len(matches) > 1:
        raise BadInput(f"{ref}: more than one preserved object starts with it; give more characters")
    return Resolved(ref, matches[0])


@dataclass(frozen=True)
class PreservedObject:
    """A preserved object a reference named: its BLAKE3 and its evidence row in the ledger."""

    ref: str
    blake3: str
    row: Mapping[str, Any]
    path: str | None = None
    """Set when the reference was a file (whose bytes are the object's)."""


def resolve_preserved(ledger: Ledger, ref: str, *, given_as: str = "", advice: str = "") -> PreservedObject:
    """The preserved object ``ref`` names (a file whose bytes were ingested, or a digest prefix);
    ``BadInput`` naming the reference (after ``given_as``, e.g. ``--to``, the option that gave
    it) and ending with ``advice`` when it names none."""
    resolved = resolve(ledger, ref)
    row = ledger.evidence_row(resolved.blake3) if resolved.blake3 else None
    if row is None or resolved.blake3 is None:
        named = f"{given_as} {printable_path(ref)}" if given_as else printable_path(ref)
        raise BadInput(
            f"{named}: not a preserved object: no object with these bytes (BLAKE3 {resolved.blake3}) was "
            f"ever ingested" + (f"; {advice}" if advice else "")
        )
    return PreservedObject(ref, resolved.blake3, row, resolved.path)

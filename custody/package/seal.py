"""The package seal (``custody/seal.txt``): a C2SP signed note, signed with the ledger's key,
over the SHA-256 of every file of the package outside ``data/`` (the payload manifests among
them, so the payload too)::

    custody-package-seal v1
    incident <incident id>
    package <package id>
    checkpoint <origin> <size> <root, hex>
    file <sha256, hex> <path>
    ...

    — <ledger key name> <base64 signature>

Paths are in byte order, one per line; the seal itself is the one file it does not list. With
the ledger's key pinned, an edited, added or removed file is named by comparing it with this
list; the seal cannot be changed without the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

SEAL_HEADER: Final = "custody-package-seal v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class SealFormatError(ValueError):
    """The seal's text is not in the layout of the module docstring."""


@dataclass
class SealBody:
    incident: str
    package_id: str
    checkpoint: str
    """``<origin> <size> <root hex>``."""
    files: dict[str, str] = field(default_factory=dict)
    """path -> SHA-256 (hex)."""


def seal_text(incident: str, package_id: str, checkpoint: str, files: Iterable[tuple[str, str]]) -> str:
    """The seal's note text (before signing); ``files`` are (path, SHA-256 hex)."""
    lines = [SEAL_HEADER, f"incident {incident}", f"package {package_id}", f"checkpoint {checkpoint}"]
    lines += [f"file {digest} {path}" for path, digest in sorted(files, key=lambda f: f[0].encode("utf-8"))]
    return "".join(line + "\n" for line in lines)


def parse_seal(text: str) -> SealBody:
    """Parse a seal's note text strictly (header, three labelled lines, ``file`` lines, no
    path twice); ``SealFormatError`` otherwise."""
    lines = text.split("\n")
    if lines[-1] != "" or len(lines) < 5 or lines[0] != SEAL_HEADER:
        raise SealFormatError(f"does not start with {SEAL_HEADER!r} and its three labelled lines")
    labels = []
    for line, label in zip(lines[1:4], ("incident", "package", "checkpoint")):
        name, sep, value = line.partition(" ")
        if name != label or not sep or not value:
            raise SealFormatError(f"line {label!r} is missing or malformed")
        labels.append(value)
    body = SealBody(labels[0], labels[1], labels[2])
    for number, line in enumerate(lines[4:-1], 5):
        parts = line.split(" ", 2)
        if len(parts) != 3 or parts[0] != "file" or not _HEX64.fullmatch(parts[1]) or not parts[2]:
            raise SealFormatError(f"line {number} is not 'file <sha256> <path>'")
        if parts[2] in body.files:
            raise SealFormatError(f"line {number} lists {parts[2]!r} a second time")
        body.files[parts[2]] = parts[1]
    return body

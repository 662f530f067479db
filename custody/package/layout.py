"""The package's layout: file names, and the parsers of its plain-text formats.

``custody.package.export`` writes what ``custody.package.verify`` reads::

    bagit.txt  bag-info.txt                    BagIt 1.0 (RFC 8493) declaration and metadata
    manifest-sha256.txt  manifest-sha512.txt   payload manifests (sha256sum -c accepts the first)
    blake3sums.txt                             BLAKE3 of every payload file (b3sum -c accepts it)
    tagmanifest-sha256.txt  tagmanifest-sha512.txt   every other file outside data/
    README.txt  report.html  hash-certification.txt
    data/<incident>_<camera>_<time>[_n].<ext>  the original files, byte for byte
    custody/incident.json                      the incident as its events say it is
    custody/items.json                         each payload file: digests, ingest event, extras
    custody/events.jsonl                       the custody events, each with ``leaf`` (canonical bytes)
    custody/proofs/event-<seq>.tlog-proof      C2SP tlog-proof of each event
    custody/checkpoint.txt                     the C2SP signed checkpoint the proofs are against
    custody/verifier.key                       the ledger's verifier key (name+keyid+base64)
    custody/packets/<payload name>.packets     each video's packet hash list (custody-packets v1)
    custody/sheets/<payload name>.png          each video's contact sheet
    custody/consistency.txt                    consistency proof from the recipient's previous package
    custody/signatures/event-<seq>.sig         the SSH signature (SSHSIG) of each event an enrolled person signed
    custody/allowed_signers                    OpenSSH allowed_signers of the enrolled keys (from the roster events)
    custody/roles.json                         the roles in force at the checkpoint (from the roles-set events;
                                               with none, config.toml's, which then judge the events)
    custody/seal.txt                           the ledger key's signature over every other file's SHA-256

``custody/seal.txt`` is in no tag manifest (it covers them); the last event of the checkpoint
is the package's ``export-prepared`` event, which lists what a complete package holds
(``docs/design-packages.md``).

BLAKE3 is in a tag file, not a ``manifest-blake3.txt``: "blake3" is not a registered hash name,
so a strict BagIt validator may reject such a payload manifest (bagit-python silently skips
it). As a tag file it is covered by the tag manifests, and ``b3sum -c`` still accepts it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

BAGIT: Final = "bagit.txt"
BAG_INFO: Final = "bag-info.txt"
PAYLOAD_DIR: Final = "data"
MANIFESTS: Final = {"sha256": "manifest-sha256.txt", "sha512": "manifest-sha512.txt"}
BLAKE3_SUMS: Final = "blake3sums.txt"
TAG_MANIFESTS: Final = {"sha256": "tagmanifest-sha256.txt", "sha512": "tagmanifest-sha512.txt"}
README: Final = "README.txt"
REPORT: Final = "report.html"
CERTIFICATION: Final = "hash-certification.txt"
INCIDENT: Final = "custody/incident.json"
ITEMS: Final = "custody/items.json"
EVENTS: Final = "custody/events.jsonl"
CHECKPOINT: Final = "custody/checkpoint.txt"
VERIFIER_KEY: Final = "custody/verifier.key"
PROOFS: Final = "custody/proofs"
PACKETS: Final = "custody/packets"
SHEETS: Final = "custody/sheets"
CONSISTENCY: Final = "custody/consistency.txt"
SEAL: Final = "custody/seal.txt"
SIGNATURES: Final = "custody/signatures"
ALLOWED_SIGNERS: Final = "custody/allowed_signers"
ROLES: Final = "custody/roles.json"
PREPARED: Final = "export-prepared"
"""The action of the event that ends a package's checkpoint and lists what the package holds."""
BAGIT_TEXT: Final = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
EVENT_FIELDS: Final = ("seq", "time", "actor", "role", "action", "subject", "details", "tool", "prev_hash")
CHUNK: Final = 4 << 20


def proof_path(seq: int) -> str:
    """Where the tlog-proof of event ``seq`` is in the bag."""
    return f"{PROOFS}/event-{seq}.tlog-proof"


def signature_path(seq: int) -> str:
    """Where the SSH signature of event ``seq`` is in the bag."""
    return f"{SIGNATURES}/event-{seq}.sig"


def parse_manifest(text: str) -> tuple[dict[str, str], list[str]]:
    """(path -> lowercase hex digest, problems) of a BagIt manifest or a ``sha256sum`` /
    ``b3sum`` list (``digest<whitespace>path``; a leading ``\\`` or ``*`` before the path, as
    those tools may write, is removed). Percent-encoded ``%0A %0D %25`` are decoded (RFC 8493).
    A malformed line, or a path listed twice, is a problem (``line N: ...``), never resolved
    silently."""
    entries: dict[str, str] = {}
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].lstrip("\\") or not all(
                c in "0123456789abcdefABCDEF" for c in parts[0].lstrip("\\")):
            bad.append(f"line {number} is not 'digest  path'")
            continue
        digest, name = parts[0].lstrip("\\"), parts[1]
        if name.startswith("*"):
            name = name[1:]
        name = name.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
        if name in entries:
            bad.append(f"line {number} lists {name!r} a second time (ambiguous)")
            continue
        entries[name] = digest.lower()
    return entries, bad


def parse_bag_info(text: str) -> dict[str, list[str]]:
    """The labels of ``bag-info.txt`` (continuation lines start with whitespace)."""
    info: dict[str, list[str]] = {}
    last: str | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and last is not None:
            info[last][-1] += " " + line.strip()
            continue
        label, sep, value = line.partition(":")
        if not sep:
            continue
        last = label.strip()
        info.setdefault(last, []).append(value.strip())
    return info


def walk_files(root: Path, top: str) -> Iterable[tuple[str, os.stat_result]]:
    """(path relative to ``root``, in POSIX form; lstat) of every non-directory under
    ``root/top``, sorted. Symbolic links are listed, never followed."""
    base = root / top
    if not base.is_dir():
        return []
    found = []
    for directory, subdirs, files in os.walk(base):
        subdirs.sort()
        for name in sorted(files) + sorted(d for d in subdirs if os.path.islink(os.path.join(directory, d))):
            full = os.path.join(directory, name)
            found.append((Path(os.path.relpath(full, root)).as_posix(), os.lstat(full)))
    return sorted(found)

"""Offline verification of a prosecutor package (a BagIt bag written by ``custody.package.export``).

Needs no database, no object store and no configuration: it imports only the standard library,
``cryptography``, ``blake3`` and the pure parts of custody (``checkpoint``, ``tree``,
``canonical``, ``errors``), never SQLAlchemy or boto3. A test checks that.

The package layout is defined in ``custody.package.layout``.

What ``verify_package`` checks, collecting every finding (each naming the file it is about):

1. the bag: ``bagit.txt`` (version 1.0, UTF-8), ``bag-info.txt``, Payload-Oxum;
2. every payload file against each payload manifest and ``blake3sums.txt`` (all three digests
   from one read): missing, unexpected (unlisted) and altered files;
3. every tag file against each tag manifest; tag files that no tag manifest lists;
4. the verifier key, and with ``trusted`` that it is the key the recipient expects;
5. the checkpoint's signature (against the trusted key if given, else the bag's key);
6. each event: its fields are its canonical bytes (``leaf``), its ``hash`` is
   SHA-256(0x00 || leaf), and its tlog-proof proves it at index ``seq`` in the checkpoint;
7. each payload file is bound to its ``ingested`` event (BLAKE3, SHA-256, size) and to a
   ``linked`` event to the incident; each packet list has the SHA-256 its ingest event
   recorded; the incident record's history is those events. (These events must each be proved
   by step 6, or that is a finding; a failed proof is reported once, not again for every file
   bound to the event.)
8. the outside anchors (``custody.package.verify_anchors``): with a trusted key, the key
   rotations from it to the checkpoint's key are followed first; then the trusted witnesses'
   cosignatures against the required quorum, and the RFC 3161 timestamp over the checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from custody.errors import BadInput
from custody.ledger import checkpoint as notes
from custody.package.verification import Check, PackageReport, Verification
from custody.package.verify_bag import check_bag, check_payload, check_tags
from custody.package.verify_bindings import check_bindings
from custody.package.verify_anchors import AnchorPolicy, AnchorSummary, check_anchors, follow_trusted_key
from custody.package.verify_events import check_events, check_signature

__all__ = ["AnchorPolicy", "Check", "PackageReport", "read_verifier_key", "verify_package"]


def verify_package(root: Path, trusted: notes.Verifier | None = None, policy: AnchorPolicy | None = None) -> PackageReport:
    """Verify the package in directory ``root`` (see the module docstring for what is checked).

    Never stops at the first finding. Raises ``BadInput`` only when ``root`` is not a
    directory; everything wrong inside it is a finding in the report."""
    if not root.is_dir():
        raise BadInput(f"{root}: not a directory (give the package's directory)")
    state = Verification(root, trusted)
    anchors = AnchorSummary()
    check_bag(state)
    check_payload(state)
    check_tags(state)
    follow_trusted_key(state, anchors)
    check_signature(state)
    check_events(state)
    check_bindings(state)
    check_anchors(state, policy or AnchorPolicy(), anchors)
    state.report.anchors = anchors.as_dict()
    return state.report


def read_verifier_key(value: str) -> notes.Verifier:
    """A verifier key given as its text (``name+keyid+base64``) or as a file holding it.
    ``BadInput`` when it is neither."""
    text = value.strip()
    if "+" not in text or os.path.isfile(value):
        try:
            text = Path(value).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{value}: neither a verifier key (name+keyid+base64) nor a readable file holding one") from exc
    try:
        return notes.Verifier.from_text(text)
    except notes.TlogError as exc:
        raise BadInput(f"{value}: not a verifier key: {exc}") from exc

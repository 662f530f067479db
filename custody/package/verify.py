"""Offline verification of a prosecutor package (a BagIt bag written by ``custody.package.export``).

Needs no database, no object store and no configuration: it imports only the standard library,
``cryptography``, ``blake3`` and the pure parts of custody (``checkpoint``, ``tree``,
``canonical``, ``consistency``, ``errors``), never SQLAlchemy or boto3. A test checks that.
The package is hostile until checked: it is read through ``custody.package.reading`` (no link
followed, no special file opened, every read bounded) and every malformed or ambiguous content
is a finding, never an exception. The layout is in ``custody.package.layout``.

What ``verify_package`` checks, collecting every finding (each naming the file it is about):

1. what the directory holds: no links, no special files (and that it is a package at all);
2. the bag: ``bagit.txt`` (version 1.0, UTF-8), ``bag-info.txt``, Payload-Oxum;
3. every payload file against each payload manifest and ``blake3sums.txt`` (all three digests
   from one read): missing, unexpected (unlisted) and altered files;
4. every tag file against each tag manifest; tag files that no tag manifest lists;
5. the verifier key, and with ``trusted`` that it is the key the recipient expects; the
   checkpoint's signature (against the trusted key if given, else the bag's key);
6. each event: its fields are its canonical bytes (``leaf``), its ``hash`` is
   SHA-256(0x00 || leaf), and its tlog-proof proves it at index ``seq`` in the checkpoint;
7. each payload file is bound to its ``ingested`` event (BLAKE3, SHA-256, size) and to a
   ``linked`` event to the incident; each packet list has the SHA-256 its ingest event
   recorded; the incident record's history is those events;
8. who acted (``custody.package.verify_signers``): each event's SSH signature by an enrolled
   person, the signer's enrollment and role at that point in the log, ``allowed_signers``;
9. the outside anchors (``custody.package.verify_anchors``): with a trusted key, the key
   rotations from it to the checkpoint's key are followed first; then the trusted witnesses'
   cosignatures against the required quorum, and the RFC 3161 timestamp over the checkpoint;
10. the seal: the ledger key's signature over every other file's SHA-256 (sealed);
11. completeness: the checkpoint's last event is the package's ``export-prepared`` event, and
    everything it lists is in the package;
12. with ``previous``, that this checkpoint extends the earlier package's (consistent).
"""

from __future__ import annotations

import os
from pathlib import Path

from custody.errors import BadInput
from custody.ledger import checkpoint as notes
from custody.package.reading import PackageFiles
from custody.package.verification import Check, PackageReport, Verification
from custody.package.verify_bag import check_bag, check_contents, check_payload, check_tags
from custody.package.verify_bindings import check_bindings
from custody.package.verify_anchors import AnchorPolicy, AnchorSummary, check_anchors, follow_trusted_key
from custody.package.verify_complete import check_complete
from custody.package.verify_events import check_events, check_signature
from custody.package.verify_previous import check_consistency_file, check_previous
from custody.package.verify_seal import check_seal
from custody.package.verify_signers import check_signers

__all__ = ["AnchorPolicy", "Check", "PackageReport", "read_verifier_key", "verify_package"]


def verify_package(root: Path, trusted: notes.Verifier | None = None, policy: AnchorPolicy | None = None,
                   previous: Path | None = None) -> PackageReport:
    """Verify the package in directory ``root`` (see the module docstring for what is checked).

    Never stops at the first finding. Raises ``BadInput`` only when ``root`` (or ``previous``)
    is not a directory; everything wrong inside it is a finding in the report."""
    for path in (root, previous):
        if path is not None and not path.is_dir():
            raise BadInput(f"{path}: not a directory (give the package's directory)")
    try:
        files = PackageFiles(str(root))
    except OSError as exc:
        raise BadInput(f"{root}: cannot be opened: {exc.strerror or exc}") from exc
    with files:
        state = Verification(root, files, trusted)
        if not check_contents(state):
            return state.report
        anchors = AnchorSummary()
        check_bag(state)
        check_payload(state)
        check_tags(state)
        follow_trusted_key(state, anchors, policy)
        check_signature(state)
        check_events(state)
        check_bindings(state)
        check_signers(state)
        check_anchors(state, policy or AnchorPolicy(), anchors)
        state.report.anchors = anchors.as_dict()
        check_seal(state)
        check_complete(state)
        check_consistency_file(state)
        if previous is not None:
            check_previous(state, previous)
    return state.report


def read_verifier_key(value: str) -> notes.Verifier:
    """A verifier key given as its text (``name+keyid+base64``) or as a file holding it.
    ``BadInput`` when it is neither."""
    text = value.strip()
    if "+" not in text or os.path.isfile(value):
        try:
            with open(value, "rb") as handle:
                text = handle.read(4096).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{value}: neither a verifier key (name+keyid+base64) nor a readable file holding one") from exc
    try:
        return notes.Verifier.from_text(text)
    except notes.TlogError as exc:
        raise BadInput(f"{value}: not a verifier key: {exc}") from exc

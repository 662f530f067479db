"""What a prosecutor package carries from the outside anchors, and its offline verification.

Tag files (beside ``custody/checkpoint.txt``, the signed checkpoint every proof is against):

* ``custody/cosignatures.txt``: the witnesses' cosignature lines on that checkpoint (C2SP
  tlog-cosignature); appended to ``checkpoint.txt`` they make the cosigned note;
* ``custody/checkpoint.tsr``: the RFC 3161 TimeStampResp over the exact bytes of
  ``checkpoint.txt``, and ``custody/tsa-ca.pem``, the CA the exporting ledger trusts for it
  (a recipient should get that CA from the authority itself and pass it with --tsa-ca);
* ``custody/key-rotations.jsonl``: the ledger's ``key-rotated`` statements up to the
  checkpoint, one JSON object per line (``seq``, ``note``), so that a recipient who pinned an
  earlier key follows the chain to the key that signed the checkpoint;
* ``custody/root-backup.txt``: with the rotations, the first key's statement naming its backup
  key, signed by both, so that a recipient who pinned the first key follows a rotation the
  backup key signed after the first key was lost.

The verification half imports no database or network code (``verify-package`` needs none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from custody.anchors.cosign import CosignatureError, CosignerVerifier
from custody.anchors.keys import open_backup_nomination, rotation_fields
from custody.ledger import checkpoint as notes

if TYPE_CHECKING:
    from custody.ledger.database import Ledger
    from custody.settings import Settings

COSIGNATURES: Final = "custody/cosignatures.txt"
TIMESTAMP: Final = "custody/checkpoint.tsr"
TSA_CA: Final = "custody/tsa-ca.pem"
KEY_ROTATIONS: Final = "custody/key-rotations.jsonl"
ROOT_BACKUP: Final = "custody/root-backup.txt"
MAX_ROTATIONS: Final = 1000


def export_files(ledger: Ledger, settings: Settings, size: int) -> dict[str, bytes]:
    """The anchor tag files for the checkpoint of ``size`` (only those that have content)."""
    import base64

    from custody.anchors import records
    from custody.anchors.config import load_anchor_config
    from custody.anchors.keys import ROOT_BACKUP_NOTE, ROTATED

    files: dict[str, bytes] = {}
    lines = [a.body for a in records.anchors(ledger, size=size, kind=records.COSIGNATURE)]
    if lines:
        files[COSIGNATURES] = "".join(lines).encode("utf-8")
    tokens = records.anchors(ledger, size=size, kind=records.RFC3161)
    if tokens:
        files[TIMESTAMP] = base64.b64decode(tokens[0].body)
        tsa = load_anchor_config(settings.config).tsa
        if tsa is not None and tsa.ca.is_file():
            files[TSA_CA] = tsa.ca.read_bytes()
    rotations = [
        json.dumps({"seq": event.seq, "note": event.details.get("note", "")}, sort_keys=True)
        for event in ledger.events(actions=[ROTATED]) if event.seq < size
    ]
    if rotations:
        files[KEY_ROTATIONS] = ("\n".join(rotations) + "\n").encode("utf-8")
        nomination = settings.home / ROOT_BACKUP_NOTE
        if nomination.is_file():
            files[ROOT_BACKUP] = nomination.read_bytes()
    return files


@dataclass
class KeyChain:
    """The key reached from a trusted key by following verified rotation statements."""

    key: notes.Verifier
    followed: int = 0
    problems: list[str] = field(default_factory=list)


def follow_rotations(trusted: notes.Verifier, text: str | None, nomination: str | None = None,
                     trusted_backup: notes.Verifier | None = None) -> KeyChain:
    """Follow ``key-rotations.jsonl`` from ``trusted``: each statement must name the key in
    force as ``old`` and be signed by it (or by its backup) and by its new key. The backup of
    the first key is the one ``nomination`` (``root-backup.txt``) names, signed by it (or, for a
    ledger made before init wrote that statement, ``trusted_backup``, pinned by the recipient); a later
    key's backup is the one the statement that introduced it names. Statements before the
    trusted key came into force are skipped. The first statement that does not verify stops
    the chain."""
    chain = KeyChain(trusted)
    if not text:
        return chain
    backup: notes.Verifier | None = None
    if nomination is not None:
        try:
            backup = open_backup_nomination(nomination, trusted)
        except (ValueError, notes.TlogError):
            backup = None  # a nomination by another (earlier) key: see the rotations below
    if backup is None:
        backup = trusted_backup
    lines = [(number, line) for number, line in enumerate(text.splitlines()[:MAX_ROTATIONS], 1) if line.strip()]
    start = _start_of(trusted, lines)
    if start is not None:
        backup = start[1]
        lines = [(number, line) for number, line in lines if number > start[0]]
    for number, line in lines:
        try:
            note = json.loads(line)["note"]
            authorities = [chain.key] + ([backup] if backup else [])
            fields = rotation_fields(notes.open_note(note, authorities).text)
            if fields["old"] != chain.key.to_text():
                raise ValueError("it names another old key than the one in force")
            new = notes.Verifier.from_text(fields["new"])
            notes.open_note(note, [new])
            if new.name != chain.key.name or fields["log"] != chain.key.name:
                raise ValueError("the new key has another name")
            backup = notes.Verifier.from_text(fields["backup"])
        except notes.TlogError as exc:
            hint = "" if backup is not None or chain.followed else (
                f" (a rotation signed by the first key's backup needs {ROOT_BACKUP}, the first key's statement naming it,"
                " or that backup key pinned with --trust-backup)"
            )
            chain.problems.append(f"{KEY_ROTATIONS}:{number}: rotation not followed: {exc}{hint}")
            break
        except (ValueError, KeyError, TypeError) as exc:
            chain.problems.append(f"{KEY_ROTATIONS}:{number}: rotation not followed: {exc}")
            break
        chain.key = new
        chain.followed += 1
    return chain


def _start_of(trusted: notes.Verifier, lines: list[tuple[int, str]]) -> tuple[int, notes.Verifier] | None:
    """When ``trusted`` is the new key of a statement that it signed, that statement's line and
    the backup it names: the chain starts after it (a recipient who pinned a later key)."""
    for number, line in reversed(lines):
        try:
            fields = rotation_fields(notes.open_note(json.loads(line)["note"], [trusted]).text)
            if fields["new"] == trusted.to_text():
                return number, notes.Verifier.from_text(fields["backup"])
        except (ValueError, KeyError, TypeError, notes.TlogError):
            continue
    return None


@dataclass
class Cosigned:
    valid: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_cosignatures(checkpoint_text: str, lines: str | None, witnesses: list[CosignerVerifier]) -> Cosigned:
    """Which trusted witnesses validly cosigned the checkpoint (lines by other keys ignored)."""
    result = Cosigned()
    body = checkpoint_text.partition("\n\n")[0] + "\n"
    for witness in witnesses:
        try:
            found = witness.find(lines or "", body)
        except CosignatureError as exc:
            result.problems.append(f"{COSIGNATURES}: {exc}")
            continue
        if found is not None:
            result.valid.append(f"{witness.name}+{witness.key_id:08x}")
    return result


def check_timestamp(root: Path, ca: Path | bytes, checkpoint_bytes: bytes) -> datetime:
    """Verify ``custody/checkpoint.tsr`` over the checkpoint's bytes; ``TimestampError``."""
    from custody.anchors.timestamp import TimestampError, verify_token

    path = root / TIMESTAMP
    try:
        if path.is_symlink() or not path.is_file():
            raise TimestampError(f"{TIMESTAMP} is missing")
        with path.open("rb") as handle:
            token = handle.read(1 << 16)
    except OSError as exc:
        raise TimestampError(f"{TIMESTAMP} cannot be read: {exc.strerror}") from exc
    return verify_token(ca, token, checkpoint_bytes)


def readme_section(files: dict[str, bytes], checkpoint_name: str) -> str:
    """The package README's section on the anchor files present (empty when none)."""
    if not files:
        return ""
    parts = ["\n7. WHAT PARTIES OTHER THAN THE AGENCY HOLD\n"]
    if COSIGNATURES in files:
        parts.append(f"""
  {COSIGNATURES} holds cosignatures of {checkpoint_name} by independent witnesses
  (C2SP tlog-cosignature, https://c2sp.org/tlog-cosignature): each witness checked that this
  checkpoint extends every earlier one it saw of this ledger before signing. Appended to
  {checkpoint_name}, they make the cosigned checkpoint. Ask each witness for its key, then:

    custody verify-package . --trust-key 'KEY' --trust-witness 'WITNESS-KEY' [--trust-witness ...] --witness-quorum N
""")
    if TIMESTAMP in files:
        parts.append(f"""
  {TIMESTAMP} is an RFC 3161 timestamp token over the exact bytes of {checkpoint_name}: the
  checkpoint existed at the time it states. Get the authority's CA certificate from the
  authority itself ({TSA_CA} is the copy the agency used), then, with OpenSSL:

    openssl ts -verify -data {checkpoint_name} -in {TIMESTAMP} -CAfile tsa-ca.pem

  ("Verification: OK"), or: custody verify-package . --tsa-ca tsa-ca.pem
""")
    if KEY_ROTATIONS in files:
        parts.append(f"""
  {KEY_ROTATIONS} lists the ledger's key rotations: each statement names the old and the new
  key and is signed by both (or by the backup key kept offline). With --trust-key set to an
  earlier key of the ledger, verify-package follows them to the key that signed {checkpoint_name}.
""")
    if ROOT_BACKUP in files:
        parts.append(f"""
  {ROOT_BACKUP} is the first key's statement naming its backup key, signed by both: it lets
  verify-package follow a rotation the backup key signed after the first key was lost.
""")
    return "".join(parts)

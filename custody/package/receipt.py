"""Receipts: a recipient's signed statement that they verified a package, and its import into
the custody ledger as a ``received-verified`` event.

A receipt is a C2SP signed note (https://c2sp.org/signed-note, Ed25519) signed with the
recipient's own key (``generate_keypair``), never the ledger's. Its text, one ``name value``
per line after the header, says which package was checked (incident, package id, the SHA-256
of its tag manifest), against which checkpoint and key, what was found, and when::

    custody-package-receipt v1
    incident 2026-1101-ICE-01
    package 6f1c...
    directory 2026-1101-ICE-01-package
    tagmanifest-sha256 9a0c...
    checkpoint host/custody/1a2b3c4d 42 <root, hex>
    ledger-key host/custody/1a2b3c4d+0badc0de+AQ...
    ledger-key-trusted yes
    payload 3 files 1234567 bytes
    events 17 proved 17
    result verified
    findings 0
    verified-at 2026-11-03T10:00:00Z
    tool custody 0.1.0
    recipient-key sao-cook-county+12345678+AQ...

This module imports nothing from the ledger at load time, so ``custody verify-package
--receipt`` stays free of the database layers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from custody import times
from custody import TOOL
from custody.ledger import checkpoint as notes
from custody.errors import BadInput, Finding, FindingKind, IntegrityFailure
from custody.package.verify import PackageReport
from custody.workspace import Workspace

RECEIPT_HEADER: Final = "custody-package-receipt v1"
MAX_RECEIPT: Final = 1 << 16
"""A receipt is a few lines; anything larger is refused unread."""


@dataclass(frozen=True)
class Receipt:
    """The statement a receipt's signature covers."""

    incident: str
    package_id: str
    directory: str
    tagmanifest_sha256: str
    checkpoint_origin: str
    checkpoint_size: int
    checkpoint_root: str
    ledger_key: str
    ledger_key_trusted: bool
    payload_files: int
    payload_bytes: int
    events: int
    proved_events: int
    result: str
    findings: int
    verified_at: str
    tool: str
    recipient_key: str

    def text(self) -> str:
        """The note text (ends in a newline; no control characters)."""
        lines = [
            RECEIPT_HEADER,
            f"incident {self.incident}",
            f"package {self.package_id}",
            f"directory {self.directory}",
            f"tagmanifest-sha256 {self.tagmanifest_sha256}",
            f"checkpoint {self.checkpoint_origin} {self.checkpoint_size} {self.checkpoint_root}",
            f"ledger-key {self.ledger_key}",
            f"ledger-key-trusted {'yes' if self.ledger_key_trusted else 'no'}",
            f"payload {self.payload_files} files {self.payload_bytes} bytes",
            f"events {self.events} proved {self.proved_events}",
            f"result {self.result}",
            f"findings {self.findings}",
            f"verified-at {self.verified_at}",
            f"tool {self.tool}",
            f"recipient-key {self.recipient_key}",
        ]
        return "".join(_single_line(line) + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """Parse a receipt's text; ``BadInput`` if it is not one."""
        lines = text.rstrip("\n").split("\n")
        if not lines or lines[0] != RECEIPT_HEADER:
            raise BadInput(f"not a custody receipt: the first line is not {RECEIPT_HEADER!r}")
        values: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(" ")
            values[name] = value
        try:
            origin, size, root = values["checkpoint"].rsplit(" ", 2)
            payload = values["payload"].split()
            events = values["events"].split()
            return cls(
                incident=values["incident"],
                package_id=values["package"],
                directory=values["directory"],
                tagmanifest_sha256=values["tagmanifest-sha256"],
                checkpoint_origin=origin,
                checkpoint_size=int(size),
                checkpoint_root=root,
                ledger_key=values["ledger-key"],
                ledger_key_trusted=values["ledger-key-trusted"] == "yes",
                payload_files=int(payload[0]),
                payload_bytes=int(payload[2]),
                events=int(events[0]),
                proved_events=int(events[2]),
                result=values["result"],
                findings=int(values["findings"]),
                verified_at=values["verified-at"],
                tool=values["tool"],
                recipient_key=values["recipient-key"],
            )
        except (KeyError, ValueError, IndexError) as exc:
            raise BadInput(f"not a custody receipt: a line is missing or malformed ({exc})") from exc

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _single_line(text: str) -> str:
    return "".join(c if c >= " " else " " for c in text)


def _write_new(path: Path, data: str, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise BadInput(f"{path} already exists; give a new file name") from exc
    except OSError as exc:
        raise BadInput(f"{path}: cannot create: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def generate_keypair(name: str, out: Path) -> str:
    """Make a recipient's Ed25519 key: the signer key (``PRIVATE+KEY+...``) in the new file
    ``out`` (mode 0600) and the verifier key in ``out.pub``. Returns the verifier key text.
    ``BadInput`` for a name a note key cannot have (spaces, ``+``) or an existing file."""
    try:
        signer, verifier = notes.generate_signer(name)
    except notes.KeyFormatError as exc:
        raise BadInput(f"key name {name!r}: {exc} (use letters, digits, '.', '-', '/', no spaces or '+')") from exc
    public = out.with_name(out.name + ".pub")
    if public.exists():
        raise BadInput(f"{public} already exists; give a new file name")
    _write_new(out, signer + "\n", 0o600)
    _write_new(public, verifier + "\n", 0o644)
    return verifier


def load_signer_key(path: Path) -> notes.Signer:
    """The recipient's signer key from a file; ``BadInput`` if unreadable or not a key."""
    try:
        return notes.Signer.from_text(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--signer-key: cannot read {path}: {exc}") from exc
    except notes.TlogError as exc:
        raise BadInput(f"--signer-key: {path} is not a signer key (PRIVATE+KEY+...): {exc}") from exc


def make_receipt(report: PackageReport, signer: notes.Signer, *, now: datetime | None = None) -> Receipt:
    """The receipt of a verification (whatever its result)."""
    moment = now or times.now()
    checkpoint = report.checkpoint or {"origin": "-", "size": 0, "root": "-"}
    return Receipt(
        incident=report.incident or "-",
        package_id=report.package_id or "-",
        directory=os.path.basename(os.path.normpath(report.path)) or "-",
        tagmanifest_sha256=report.tagmanifest_sha256 or "-",
        checkpoint_origin=str(checkpoint["origin"]),
        checkpoint_size=int(checkpoint["size"]),
        checkpoint_root=str(checkpoint["root"]),
        ledger_key=report.key or "-",
        ledger_key_trusted=report.key_trusted,
        payload_files=report.payload_files,
        payload_bytes=report.payload_bytes,
        events=report.events,
        proved_events=report.proved_events,
        result="verified" if report.ok else "findings",
        findings=len(report.findings),
        verified_at=times.format_utc(moment),
        tool=TOOL,
        recipient_key=signer.verifier().to_text(),
    )


def write_receipt(receipt: Receipt, signer: notes.Signer, out: Path) -> str:
    """Sign the receipt with the recipient's key and write it to the new file ``out``."""
    note = notes.sign_note(receipt.text(), [signer])
    _write_new(out, note, 0o644)
    return note


@dataclass(frozen=True)
class OpenedReceipt:
    receipt: Receipt
    note: str
    signer: notes.Verifier
    trusted: bool
    """Whether the signature was checked against a key the importer gave (else only against
    the key the receipt names, which proves integrity but not who signed)."""


def open_receipt(note: str, trusted: notes.Verifier | None = None, where: str = "receipt") -> OpenedReceipt:
    """Parse a receipt and verify its signature: against ``trusted`` if given, else against
    the key it names. ``BadInput`` if it is not a receipt; ``IntegrityFailure`` if the
    signature does not verify."""
    split = note.rfind("\n\n")
    if split < 0:
        raise BadInput(f"{where}: not a signed note (no blank line before the signature)")
    receipt = Receipt.parse(note[: split + 1])
    if trusted is None:
        try:
            verifier = notes.Verifier.from_text(receipt.recipient_key)
        except notes.TlogError as exc:
            raise BadInput(f"{where}: its recipient-key is not a verifier key: {exc}") from exc
    else:
        verifier = trusted
    try:
        notes.open_note(note, [verifier])
    except notes.NoteError as exc:
        raise BadInput(f"{where}: not a signed note: {exc}") from exc
    except (notes.UnverifiedNote, notes.InvalidSignature) as exc:
        raise IntegrityFailure([Finding(FindingKind.BAD_SIGNATURE, where, f"not signed by {verifier.to_text()} ({exc})")]) from exc
    if trusted is not None and receipt.recipient_key != trusted.to_text():
        raise IntegrityFailure([Finding(FindingKind.MISMATCH, where, "signed by the trusted key but names another recipient-key")])
    return OpenedReceipt(receipt, note, verifier, trusted is not None)


@dataclass
class ReceiptImport:
    """What ``import_receipt`` recorded (or found already recorded)."""

    receipt: Receipt
    seq: int
    already: bool
    export_seqs: list[int]
    trusted: bool

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "already_recorded": self.already, "export_seqs": self.export_seqs,
                "signature_checked_against": "trusted key" if self.trusted else "the key the receipt names",
                "receipt": self.receipt.as_dict()}


def import_receipt(workspace: Workspace, path: Path, trusted: notes.Verifier | None = None) -> ReceiptImport:
    """Verify a receipt and append it to the ledger as ``received-verified`` (subject: the
    incident), then sign a checkpoint. The receipt must name a package this ledger exported
    (an ``exported`` event with its tag manifest's SHA-256; ``BadInput`` otherwise) and a
    checkpoint this ledger signed (``IntegrityFailure`` if the ledger's checkpoint of that size
    has another root). Importing the same receipt again records nothing and says so."""
    try:
        if not path.is_file():
            raise BadInput(f"{path}: not a regular file (give the receipt's file)")
        with path.open("rb") as handle:
            data = handle.read(MAX_RECEIPT + 1)
        if len(data) > MAX_RECEIPT:
            raise BadInput(f"{path}: larger than {MAX_RECEIPT} bytes, not a receipt")
        note = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the receipt: {exc}") from exc
    opened = open_receipt(note, trusted, str(path))
    receipt = opened.receipt
    ledger = workspace.ledger
    exports = [
        e.seq for e in ledger.events(incident=receipt.incident, actions=("exported",))
        if _package(e.details).get("tagmanifest_sha256") == receipt.tagmanifest_sha256
    ]
    if not exports:
        raise BadInput(
            f"{path}: this ledger exported no package of incident {receipt.incident} with tag manifest "
            f"SHA-256 {receipt.tagmanifest_sha256}"
        )
    rows = {row["size"]: row for row in ledger.checkpoint_rows()}
    row = rows.get(receipt.checkpoint_size)
    if row is None or row["root"] != receipt.checkpoint_root:
        raise IntegrityFailure([Finding(
            FindingKind.MISMATCH, str(path),
            f"the receipt's checkpoint (size {receipt.checkpoint_size}, root {receipt.checkpoint_root}) is not one "
            "this ledger signed: the recipient checked a package against another ledger state",
            "sha256", row["root"] if row else None, receipt.checkpoint_root,
        )])
    for event in ledger.events(incident=receipt.incident, actions=("received-verified",)):
        if event.details.get("receipt") == note:
            return ReceiptImport(receipt, event.seq, True, exports, opened.trusted)
    settings = workspace.settings
    event = ledger.append(
        "received-verified",
        actor=settings.actor,
        role=settings.role,
        subject={"incident": receipt.incident},
        details={
            "receipt": note,
            "recipient_key": receipt.recipient_key,
            "signature_checked_against": "trusted key" if opened.trusted else "key named in the receipt",
            "package": receipt.package_id,
            "tagmanifest_sha256": receipt.tagmanifest_sha256,
            "result": receipt.result,
            "findings": receipt.findings,
            "ledger_key_trusted": receipt.ledger_key_trusted,
            "verified_at": receipt.verified_at,
            "export_seqs": exports,
            "checkpoint": {"size": receipt.checkpoint_size, "root": receipt.checkpoint_root},
        },
    )
    workspace.seal()
    return ReceiptImport(receipt, event.seq, False, exports, opened.trusted)


def _package(details: Mapping[str, Any]) -> Mapping[str, Any]:
    package = details.get("package")
    return package if isinstance(package, Mapping) else {}

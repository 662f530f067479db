"""Signed checkpoints of the ledger's Merkle tree, kept in WORM storage, and the full ledger
verification that compares the database with them.

A checkpoint (C2SP tlog-checkpoint in a C2SP signed note, Ed25519) is signed at the end of every
command that appended events, recorded in the database, and written into the object store under
``checkpoints/`` with a COMPLIANCE retention. Those copies cannot be changed, so a database that
was rewritten, truncated or rolled back no longer matches them.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.errors import BadInput, ConfigError, Finding, FindingKind
from custody.settings import crash_point
from custody.ledger.database import Ledger
from storage.base import ObjectStore, Retention
from storage.errors import ObjectExists, ObjectNotFound

CHECKPOINT_PREFIX = "checkpoints/"
CHECKPOINT_RETENTION_DAYS = 3650


def checkpoint_key(size: int) -> str:
    return f"{CHECKPOINT_PREFIX}{size:016d}"


def load_signer(path: Path) -> notes.NoteSigner:
    """The ledger's signing key: the key in ``path``, or the HSM key its PKCS#11 URI names
    (``custody.ledger.hsm``)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text.startswith("pkcs11:"):
            from custody.ledger.hsm import Pkcs11NoteSigner

            return Pkcs11NoteSigner.open(text)
        return notes.Signer.from_text(text)
    except FileNotFoundError as exc:
        raise ConfigError(f"no signing key at {path}; run 'custody init'") from exc
    except (OSError, notes.TlogError) as exc:
        raise ConfigError(f"the signing key {path} is unusable: {exc}") from exc


def load_verifier(path: Path, signer_path: Path) -> notes.Verifier:
    """The ledger's verifier key: ``verifier.key``, else derived from the signing key."""
    try:
        return notes.Verifier.from_text(path.read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        return load_signer(signer_path).verifier()
    except (OSError, notes.TlogError) as exc:
        raise ConfigError(f"the verifier key {path} is unusable: {exc}") from exc


@dataclass(frozen=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str
    store_key: str
    created: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "note": self.note,
            "store_key": self.store_key,
            "created": self.created,
        }


def seal(ledger: Ledger, store: ObjectStore, signer: notes.NoteSigner, *, force: bool = False) -> SignedCheckpoint | None:
    """Sign a checkpoint of the whole ledger, put it in WORM storage, then record it.

    Nothing is signed when the ledger is empty, or when the latest checkpoint already covers
    every event (unless ``force``, which returns that latest one)."""
    size, _ = ledger.head()
    recorded = {row["size"]: row for row in ledger.checkpoint_rows()}
    if size == 0:
        return None
    if size in recorded:
        if not force:
            return None
        row = recorded[size]
        return SignedCheckpoint(size, bytes.fromhex(row["root"]), row["note"], row["store_key"], False)
    _record_interrupted(ledger, store, signer, max(recorded, default=0), size)
    root = ledger.with_nodes(lambda nodes: tree.root(nodes, size))
    note = notes.sign_checkpoint(notes.Checkpoint(signer.name, size, root), [signer])
    key = checkpoint_key(size)
    data = note.encode("utf-8")
    created = True
    try:
        store.put(
            key,
            io.BytesIO(data),
            len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            retention=Retention("COMPLIANCE", store.now() + timedelta(days=CHECKPOINT_RETENTION_DAYS)),
            metadata={"tree-size": str(size), "root": root.hex()},
        )
    except ObjectExists:
        note = _read_concurrent_put(store, key)
        created = False
    crash_point("checkpoint-stored")
    ledger.record_checkpoint(size=size, root=root.hex(), note=note, store_key=key)
    return SignedCheckpoint(size, root, note, key, created)


def _read_concurrent_put(store: ObjectStore, key: str, wait: float = 5.0) -> str:
    """The checkpoint another process is putting under ``key`` at this moment: it can exist
    (its lock record is written first) a moment before its bytes can be read."""
    import time

    deadline = time.monotonic() + wait
    while True:
        try:
            with store.open(key) as stream:
                return stream.read().decode("utf-8")
        except ObjectNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _record_interrupted(ledger: Ledger, store: ObjectStore, signer: notes.NoteSigner, latest: int, size: int) -> None:
    """Record the checkpoints a sealing that was stopped (killed, power cut) put in WORM storage
    but did not record in the database. They are newer than the latest recorded one, so one
    listing of the keys between the two (their common prefix) finds them. Only a checkpoint
    signed by this ledger's key, whose root is the ledger's at its size, is recorded; anything
    else stays for 'custody ledger verify' and audits to report."""
    if size - latest < 2:
        return
    first, last = checkpoint_key(latest + 1), checkpoint_key(size - 1)
    common = len(os.path.commonprefix([first, last]))
    for info in store.list(first[:common]):
        try:
            between = int(info.key[len(CHECKPOINT_PREFIX):])
        except ValueError:
            continue
        if not latest < between < size:
            continue
        try:
            with store.open(info.key, info.version or None) as stream:
                note = stream.read(1 << 16).decode("utf-8")
            checkpoint, _ = notes.open_checkpoint(note, [signer.verifier()], origin=signer.name)
        except (ObjectNotFound, UnicodeDecodeError, OSError, notes.TlogError):
            continue
        root = ledger.with_nodes(lambda nodes: tree.root(nodes, between))
        if checkpoint.size == between and checkpoint.root == root:
            ledger.record_checkpoint(size=between, root=root.hex(), note=note, store_key=info.key)


@dataclass
class LedgerReport:
    events: int = 0
    checkpoints_in_store: int = 0
    checkpoints_in_database: int = 0
    latest_checkpoint: int | None = None
    root: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "root": self.root,
            "latest_checkpoint": self.latest_checkpoint,
            "checkpoints_in_store": self.checkpoints_in_store,
            "checkpoints_in_database": self.checkpoints_in_database,
            "findings": [f.as_dict() for f in self.findings],
        }


def _store_checkpoints(store: ObjectStore, report: LedgerReport) -> dict[int, str]:
    found: dict[int, str] = {}
    for info in store.list(CHECKPOINT_PREFIX):
        name = info.key[len(CHECKPOINT_PREFIX):]
        try:
            with store.open(info.key, info.version or None) as stream:
                text = stream.read().decode("utf-8")
        except (ObjectNotFound, UnicodeDecodeError, OSError) as exc:
            report.findings.append(Finding(FindingKind.LEDGER_CORRUPT, f"checkpoint {info.key}", f"unreadable in the store: {exc}"))
            continue
        try:
            size = int(name)
        except ValueError:
            report.findings.append(Finding(FindingKind.LEDGER_CORRUPT, f"checkpoint {info.key}", "unexpected object under checkpoints/"))
            continue
        found[size] = text
    return found


def _open(note: str, verifiers: Sequence[notes.Verifier], where: str, report: LedgerReport) -> notes.Checkpoint | None:
    try:
        checkpoint, _ = notes.open_checkpoint(note, verifiers, origin=verifiers[0].name)
    except notes.UnverifiedNote:
        keys = " or ".join(v.to_text() for v in verifiers)
        report.findings.append(
            Finding(FindingKind.LEDGER_CORRUPT, where, f"not signed by the ledger's key {keys}")
        )
        return None
    except notes.TlogError as exc:
        report.findings.append(Finding(FindingKind.LEDGER_CORRUPT, where, f"signature or format invalid: {exc}"))
        return None
    return checkpoint


def verify_ledger(
    ledger: Ledger, store: ObjectStore, verifier: notes.Verifier | Sequence[notes.Verifier]
) -> LedgerReport:
    """Check the hash chain, the Merkle tree, every checkpoint's signature, and every WORM
    checkpoint against the database. Every finding is reported, each naming what is wrong.
    ``verifier`` may be the ledger's keys over time (``custody.anchors.keys``): a checkpoint
    signed by any of them is accepted here; which key was in force at which size is checked
    there."""
    verifiers = [verifier] if isinstance(verifier, notes.Verifier) else list(verifier)
    report = LedgerReport()
    builder = tree.RootBuilder()
    wanted: dict[int, bytes] = {}
    in_store = _store_checkpoints(store, report)
    in_database = {row["size"]: row for row in ledger.checkpoint_rows()}
    sizes = set(in_store) | set(in_database)

    def on_leaf(leaf: bytes) -> None:
        builder.add(leaf if len(leaf) == 32 else b"\0" * 32)
        if builder.size in sizes:
            wanted[builder.size] = builder.root()

    report.events, chain = ledger.verify_chain(on_leaf)
    report.findings.extend(chain)
    report.checkpoints_in_store = len(in_store)
    report.checkpoints_in_database = len(in_database)
    recomputed_root = builder.root()
    report.root = recomputed_root.hex()
    stored_root = recomputed_root
    if report.events:
        stored_root = ledger.with_nodes(lambda nodes: tree.root(nodes, report.events))
        if stored_root != recomputed_root:
            report.findings.append(
                Finding(
                    FindingKind.LEDGER_CORRUPT,
                    "merkle tree",
                    "the stored tree nodes do not match the events",
                    "sha256",
                    recomputed_root.hex(),
                    stored_root.hex(),
                )
            )
    for size in sorted(sizes):
        where = f"checkpoint {size}"
        if size in in_store and size not in in_database:
            report.findings.append(
                Finding(FindingKind.LEDGER_CORRUPT, where, "in WORM storage but missing from the database (removed from the database)")
            )
        if size in in_database and size not in in_store:
            report.findings.append(
                Finding(FindingKind.LEDGER_CORRUPT, where, "recorded in the database but missing from WORM storage")
            )
        copies = [("WORM", in_store[size])] if size in in_store else []
        if size in in_database:
            copies.append(("database", in_database[size]["note"]))
        for origin, note in copies:
            checkpoint = _open(note, verifiers, f"{where} ({origin} copy)", report)
            if checkpoint is None:
                continue
            if checkpoint.size != size:
                report.findings.append(Finding(FindingKind.LEDGER_CORRUPT, where, f"{origin} copy is for tree size {checkpoint.size}"))
                continue
            if size > report.events:
                report.findings.append(
                    Finding(
                        FindingKind.LEDGER_CORRUPT,
                        where,
                        f"the {origin} checkpoint covers {size} events but the ledger has only {report.events}: "
                        "events were deleted, or the database was truncated or replaced by an older copy",
                    )
                )
                continue
            if wanted.get(size) != checkpoint.root:
                report.findings.append(
                    Finding(
                        FindingKind.LEDGER_CORRUPT,
                        where,
                        f"the ledger's first {size} events no longer have the root this {origin} checkpoint signed: "
                        "events were altered, inserted or replaced",
                        "sha256",
                        checkpoint.root.hex(),
                        (wanted.get(size) or b"").hex(),
                    )
                )
                continue
            if origin == "WORM" and size < report.events and report.events:
                proof = ledger.with_nodes(lambda nodes: tree.consistency_proof(nodes, size, report.events))
                if not tree.verify_consistency(size, report.events, checkpoint.root, stored_root, proof):
                    report.findings.append(
                        Finding(FindingKind.LEDGER_CORRUPT, where, "no valid consistency proof from this checkpoint to the current tree")
                    )
    if in_store:
        report.latest_checkpoint = max(in_store)
    return report


def prove_event(ledger: Ledger, store: ObjectStore, signer: notes.NoteSigner, seq: int) -> str:
    """A C2SP tlog-proof that event ``seq`` is in the ledger, against the latest checkpoint
    (signed now if none covers the event yet)."""
    size, _ = ledger.head()
    if not 0 <= seq < size:
        raise BadInput(f"event {seq} does not exist (the ledger has {size} events)")
    seal(ledger, store, signer)
    rows = ledger.checkpoint_rows()
    latest = rows[-1]
    proof = ledger.with_nodes(lambda nodes: tree.inclusion_proof(nodes, seq, latest["size"]))
    return notes.format_tlog_proof(seq, proof, latest["note"])

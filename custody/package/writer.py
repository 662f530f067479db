"""Writing a package's files: each one fsynced, the custody tag files, then the manifests."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody import TOOL
from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.package import layout
from custody.package.model import ExportContext, human_size, one_line
from custody.package.seal import seal_text

if TYPE_CHECKING:
    from custody.ledger.database import Ledger


class BagWriter:
    """Writes files under a new directory, each fsynced, and remembers them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(mode=0o755)

    def write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def text(self, name: str, text: str) -> Path:
        return self.write(name, text.encode("utf-8"))

    def files(self, top: str) -> list[str]:
        return [name for name, _ in layout.walk_files(self.root, top)]

    def sync_directories(self) -> None:
        for directory, _, _ in os.walk(self.root):
            fsync_dir(Path(directory))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_custody(bag: BagWriter, context: ExportContext, ledger: Ledger) -> None:
    """The events (with their canonical bytes), one tlog-proof each, the checkpoint, the
    verifier key, the incident record and the items."""
    size = context.checkpoint.size
    seqs = [e.seq for e in context.events]
    proofs: dict[int, list[bytes]] = ledger.with_nodes(
        lambda nodes: {seq: tree.inclusion_proof(nodes, seq, size) for seq in seqs}
    )
    lines = []
    for event in context.events:
        record = event.as_dict()
        record["proof"] = layout.proof_path(event.seq)
        lines.append(json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
        bag.text(layout.proof_path(event.seq), notes.format_tlog_proof(event.seq, proofs[event.seq], context.checkpoint_note))
    bag.text(layout.EVENTS, "".join(line + "\n" for line in lines))
    bag.text(layout.CHECKPOINT, context.checkpoint_note)
    bag.text(layout.VERIFIER_KEY, context.verifier.to_text() + "\n")
    bag.text(layout.INCIDENT, json.dumps(context.state, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    bag.text(layout.ITEMS, json.dumps([i.as_dict() for i in context.items], indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _sums(entries: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries))


def write_manifests(bag: BagWriter, context: ExportContext) -> str:
    """Payload manifests, BLAKE3 list, bagit.txt, bag-info.txt, then the tag manifests over
    every other file. Returns the SHA-256 of ``tagmanifest-sha256.txt``."""
    for algorithm, manifest in layout.MANIFESTS.items():
        bag.text(manifest, _sums((i.file, getattr(i, algorithm)) for i in context.items))
    bag.text(layout.BLAKE3_SUMS, _sums((i.file, i.blake3) for i in context.items))
    bag.text(layout.BAGIT, layout.BAGIT_TEXT)
    total = sum(i.size for i in context.items)
    info = [
        ("Source-Organization", context.organization),
        ("Bagging-Date", context.created.strftime("%Y-%m-%d")),
        ("External-Identifier", context.incident),
        ("External-Description", f"Evidence package for incident {context.incident}: {len(context.items)} file(s), "
                                 f"{len(context.events)} custody event(s) with inclusion proofs"),
        ("Internal-Sender-Identifier", context.package_id),
        ("Contact-Name", context.workspace.settings.actor),
        ("Payload-Oxum", f"{total}.{len(context.items)}"),
        ("Bag-Size", human_size(total)),
        ("Bag-Software-Agent", TOOL),
        ("Custody-Recipient", context.recipient),
        ("Custody-Ledger-Key", context.verifier.to_text()),
        ("Custody-Checkpoint", f"{context.checkpoint.origin} {context.checkpoint.size}"),
    ]
    bag.text(layout.BAG_INFO, "".join(f"{label}: {one_line(value)}\n" for label, value in info))
    tag_files = [name for name in bag.files(".") if not name.startswith(layout.PAYLOAD_DIR + "/")]
    digest = ""
    for algorithm, manifest in layout.TAG_MANIFESTS.items():
        text = _sums((name, hashlib.new(algorithm, (bag.root / name).read_bytes()).hexdigest()) for name in tag_files)
        bag.text(manifest, text)
        if algorithm == "sha256":
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest


def write_seal(bag: BagWriter, context: ExportContext, signer: notes.NoteSigner) -> str:
    """``custody/seal.txt``: the SHA-256 of every file outside ``data/``, signed with the
    ledger's key (``custody.package.seal``). Written last."""
    files = [
        (name, hashlib.sha256((bag.root / name).read_bytes()).hexdigest())
        for name in bag.files(".") if not name.startswith(layout.PAYLOAD_DIR + "/")
    ]
    checkpoint = context.checkpoint
    text = seal_text(context.incident, context.package_id,
                     f"{checkpoint.origin} {checkpoint.size} {checkpoint.root.hex()}", files)
    note = notes.sign_note(text, [signer])
    bag.text(layout.SEAL, note)
    return hashlib.sha256(note.encode("utf-8")).hexdigest()

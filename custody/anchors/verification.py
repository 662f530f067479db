"""The whole check of ``ledger verify`` and ``audit``: the ledger against its WORM checkpoints
(``custody.ledger.seal.verify_ledger``) with the chain of keys from the root keys
(``custody.anchors.keys``), then what outsiders hold (``custody.anchors.witnessing``)."""

from __future__ import annotations

from custody.anchors.keys import check_checkpoint_keys, key_chain, read_root
from custody.anchors.witnessing import AnchorReport, verify_anchors
from custody.ledger import checkpoint as notes
from custody.ledger.database import Ledger
from custody.ledger.seal import LedgerReport, verify_ledger
from custody.settings import Settings
from storage.base import ObjectStore


def ledger_keys(ledger: Ledger, settings: Settings, current: notes.Verifier) -> list[notes.Verifier]:
    """Every key the ledger was signed with, root first (rotations that verify only)."""
    root, backup = read_root(settings.home / "root.vkeys", current)
    chain, _ = key_chain(ledger, root, backup)
    return [period.verifier for period in chain]


def verify_all(
    ledger: Ledger, store: ObjectStore, settings: Settings, current: notes.Verifier, *, contact: bool = True
) -> tuple[LedgerReport, AnchorReport]:
    root, backup = read_root(settings.home / "root.vkeys", current)
    chain, findings = key_chain(ledger, root, backup)
    report = verify_ledger(ledger, store, [period.verifier for period in chain])
    report.findings.extend(findings)
    if len(chain) > 1:
        report.findings.extend(check_checkpoint_keys(chain, ledger.checkpoint_rows()))
    anchors = verify_anchors(ledger, settings, report.events, contact=contact)
    report.findings.extend(anchors.findings)
    return report, anchors

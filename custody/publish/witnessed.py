"""A release carries what the witnesses signed: their cosignatures (C2SP tlog-cosignature) on
the checkpoint its ``published`` event is proved in (the one inside
``published-event.tlog-proof``). A witness cosigns only a checkpoint that extends every earlier
one it saw of this ledger, so with a quorum of trusted witnesses the agency cannot show one
release to the public and another history to an inspector general.

``cosignatures.txt`` is written after the event (it is not among the files the event names):
the lines are checked here against the witnesses a reader trusts, and lines by other keys are
ignored. Offline: no database or network code is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from custody.anchors.bundle import check_cosignatures
from custody.anchors.cosign import CosignerVerifier
from custody.errors import Finding, FindingKind

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

COSIGNATURES: Final = "cosignatures.txt"
MAX_COSIGNATURES: Final = 1 << 20


def cosignature_lines(ledger: Ledger, size: int) -> str | None:
    """The witnesses' cosignature lines recorded for the checkpoint of ``size`` (None: none)."""
    from custody.anchors import records

    lines = [a.body for a in records.anchors(ledger, size=size, kind=records.COSIGNATURE)]
    return "".join(lines) or None


def check_witnesses(root: Path, proof_text: str | None, witnesses: Sequence[CosignerVerifier],
                    quorum: int) -> tuple[list[str], list[Finding]]:
    """Which trusted witnesses cosigned the proof's checkpoint, and the findings: one when
    fewer than ``quorum`` did (only when witnesses are given: without them nothing is required)."""
    findings: list[Finding] = []
    path = root / COSIGNATURES
    lines: str | None = None
    if path.is_symlink() or (path.exists() and not path.is_file()):
        findings.append(Finding(FindingKind.MALFORMED, COSIGNATURES, "is not a regular file; it is not read"))
    elif path.is_file():
        try:
            with path.open("rb") as handle:
                lines = handle.read(MAX_COSIGNATURES).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            findings.append(Finding(FindingKind.MALFORMED, COSIGNATURES, f"cannot be read as UTF-8 text: {exc}"))
    if not witnesses or proof_text is None:
        return [], findings
    signed_checkpoint = proof_text.partition("\n\n")[2]
    cosigned = check_cosignatures(signed_checkpoint, lines, list(witnesses))
    for problem in cosigned.problems:
        findings.append(Finding(FindingKind.BAD_SIGNATURE, COSIGNATURES, problem.replace("custody/cosignatures.txt: ", "")))
    if len(cosigned.valid) < quorum:
        findings.append(Finding(
            FindingKind.UNDER_QUORUM, COSIGNATURES,
            f"{len(cosigned.valid)} of the trusted witnesses cosigned the checkpoint the published event is proved in; "
            f"{quorum} required" + ("" if lines is not None else " (the release carries no cosignatures)"),
            expected=str(quorum), found=str(len(cosigned.valid)),
        ))
    return cosigned.valid, findings

"""Verification steps for what outsiders hold (``custody.anchors.bundle``): the chain of keys
from the recipient's trusted key to the key that signed the checkpoint, the witnesses'
cosignatures against a quorum, and the RFC 3161 timestamp over ``custody/checkpoint.txt``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import times
from custody.anchors.bundle import (
    COSIGNATURES, KEY_ROTATIONS, ROOT_BACKUP, TIMESTAMP, TSA_CA, check_cosignatures, check_timestamp, follow_rotations,
)
from custody.anchors.cosign import CosignerVerifier
from custody.errors import ConfigError, FindingKind
from custody.ledger import checkpoint as notes
from custody.package.layout import CHECKPOINT
from custody.package.verification import Verification


@dataclass(frozen=True)
class AnchorPolicy:
    """What the recipient requires: witnesses it trusts and how many must have cosigned, and
    the CA of the time-stamping authority it trusts (None: the package's own CA, reported as
    such, and a missing token is not a finding); the backup key of the trusted key, when the
    recipient pinned it (``root.vkeys``), to follow a rotation it signed."""

    witnesses: Sequence[CosignerVerifier] = ()
    quorum: int = 0
    tsa_ca: Path | None = None
    trusted_backup: notes.Verifier | None = None


@dataclass
class AnchorSummary:
    rotations_followed: int = 0
    cosigned_by: list[str] = field(default_factory=list)
    quorum: int = 0
    timestamp: str | None = None
    timestamp_ca: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rotations_followed": self.rotations_followed,
            "cosigned_by": self.cosigned_by,
            "quorum": self.quorum,
            "timestamp": self.timestamp,
            "timestamp_ca": self.timestamp_ca,
        }


def follow_trusted_key(state: Verification, summary: AnchorSummary, policy: AnchorPolicy | None = None) -> None:
    """With a trusted key that is not the package's, follow ``key-rotations.jsonl`` from it:
    the key reached becomes the trusted key the signature step checks against."""
    if state.trusted is None:
        return
    text = state.read_text(KEY_ROTATIONS, required=False)
    if text is None:
        return
    state.begin("key rotations")
    chain = follow_rotations(state.trusted, text, state.read_text(ROOT_BACKUP, required=False),
                             policy.trusted_backup if policy is not None else None)
    for problem in chain.problems:
        state.finding(FindingKind.BAD_SIGNATURE, KEY_ROTATIONS, problem)
    summary.rotations_followed = chain.followed
    if chain.followed:
        state.report.checks[-1].detail = f"{chain.followed} rotation(s) followed from the trusted key to {chain.key.to_text()}"
        state.trusted = chain.key
    else:
        state.report.checks[-1].detail = "no rotation from the trusted key"


def check_anchors(state: Verification, policy: AnchorPolicy, summary: AnchorSummary) -> None:
    check = state.begin("outside anchors")
    summary.quorum = policy.quorum
    text = state.checkpoint_text
    if text is None:
        return
    lines = state.read_text(COSIGNATURES, required=False)
    cosigned = check_cosignatures(text, lines, list(policy.witnesses))
    for problem in cosigned.problems:
        state.finding(FindingKind.BAD_SIGNATURE, COSIGNATURES, problem)
    summary.cosigned_by = cosigned.valid
    if policy.witnesses and len(cosigned.valid) < policy.quorum:
        state.finding(
            FindingKind.UNDER_QUORUM, COSIGNATURES,
            f"{len(cosigned.valid)} of the trusted witnesses cosigned the checkpoint; {policy.quorum} required",
            expected=str(policy.quorum), found=str(len(cosigned.valid)),
        )
    details = [f"{len(cosigned.valid)} trusted witness cosignature(s)" + (f" (quorum {policy.quorum})" if policy.witnesses else "")]
    token_present = (state.root / TIMESTAMP).is_file()
    if token_present or policy.tsa_ca is not None:
        ca: Path | bytes = policy.tsa_ca if policy.tsa_ca is not None else state.root / TSA_CA
        summary.timestamp_ca = str(policy.tsa_ca) if policy.tsa_ca is not None else f"{TSA_CA} (the package's own)"
        from custody.anchors.timestamp import TimestampError

        try:
            when = check_timestamp(state.root, ca, text.encode("utf-8"))
        except TimestampError as exc:
            state.finding(FindingKind.BAD_SIGNATURE if token_present else FindingKind.MISSING, TIMESTAMP, str(exc))
        except ConfigError as exc:
            state.finding(FindingKind.MALFORMED, TSA_CA if policy.tsa_ca is None else str(policy.tsa_ca), str(exc))
        else:
            summary.timestamp = times.format_utc(when)
            details.append(f"RFC 3161 timestamp {summary.timestamp} over {CHECKPOINT} ({summary.timestamp_ca})")
    check.detail = "; ".join(details)

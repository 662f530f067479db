"""Where the anchors of a checkpoint are kept: a row of ``checkpoint_anchors`` in the ledger
database and a WORM object under ``anchors/<size, 16 digits>/`` beside ``checkpoints/``.

The object is written first (COMPLIANCE retention, like the checkpoint), then the row; a repeat
of either is ignored, so recording again after a crash between the two completes the pair.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from custody import times
from custody.ledger.database import Ledger
from custody.ledger import queries
from custody.ledger.seal import CHECKPOINT_RETENTION_DAYS
from storage.base import ObjectStore, Retention
from storage.errors import ObjectExists

ANCHOR_PREFIX = "anchors/"
COSIGNATURE = "cosignature"
RFC3161 = "rfc3161"


def anchor_key(size: int, kind: str, issuer: str) -> str:
    suffix = hashlib.sha256(issuer.encode("utf-8")).hexdigest()[:16]
    extension = ".tsr" if kind == RFC3161 else ".sig"
    return f"{ANCHOR_PREFIX}{size:016d}/{kind}-{suffix}{extension}"


@dataclass(frozen=True)
class Anchor:
    size: int
    kind: str
    issuer: str
    body: str
    time: str
    store_key: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "kind": self.kind,
            "issuer": self.issuer,
            "body": self.body,
            "time": self.time,
            "store_key": self.store_key,
        }


def record_anchor(
    ledger: Ledger, store: ObjectStore, *, size: int, kind: str, issuer: str, body: str, data: bytes, time: str
) -> Anchor:
    """Put ``data`` (the line, or the token's DER) in WORM storage, then record ``body``."""
    key = anchor_key(size, kind, issuer)
    try:
        store.put(
            key,
            io.BytesIO(data),
            len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            retention=Retention("COMPLIANCE", store.now() + timedelta(days=CHECKPOINT_RETENTION_DAYS)),
            metadata={"tree-size": str(size), "anchor-kind": kind},
        )
    except ObjectExists:
        pass
    queries.record_anchor_row(
        ledger, size=size, kind=kind, issuer=issuer, body=body, time=time or times.stamp(), store_key=key
    )
    return Anchor(size, kind, issuer, body, time, key)


def anchors(ledger: Ledger, *, size: int | None = None, kind: str | None = None) -> list[Anchor]:
    """Recorded anchors, by size then kind then issuer."""
    return [
        Anchor(r["size"], r["kind"], r["issuer"], r["body"], r["time"], r["store_key"])
        for r in queries.anchor_rows(ledger, size=size, kind=kind)
    ]


def last_cosigned(ledger: Ledger, issuers: Sequence[str]) -> dict[str, int]:
    """For each witness, the largest checkpoint size it cosigned (0 if none)."""
    found = {issuer: 0 for issuer in issuers}
    for issuer, size in queries.largest_anchored_sizes(ledger, COSIGNATURE).items():
        if issuer in found:
            found[issuer] = size
    return found

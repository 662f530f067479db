"""After a seal: every configured outside anchor for the new checkpoint (witness cosignatures,
then an RFC 3161 timestamp token). With no ``[anchors]`` configured this costs nothing."""

from __future__ import annotations

import base64
import logging
from concurrent.futures import ThreadPoolExecutor

from custody import times
from custody.anchors import records
from custody.anchors.config import AnchorConfig, load_anchor_config
from custody.anchors.timestamp import TimestampError, request_token, token_issuer
from custody.anchors.witnessing import WitnessOutcome, witness_checkpoint
from custody.errors import ConfigError
from custody.ledger.database import Ledger
from custody.settings import Settings
from storage.base import ObjectStore

log = logging.getLogger("custody.anchors")


def anchor_checkpoint(ledger: Ledger, store: ObjectStore, settings: Settings, size: int, note: str) -> list[WitnessOutcome]:
    """Anchor the checkpoint ``note`` of ``size`` where it is not anchored yet. A witness or
    authority that is down is a warning; the next seal catches up."""
    config = load_anchor_config(settings.config)
    if not config.configured:
        return []
    if config.tsa is None or not config.witnesses:
        outcomes = witness_checkpoint(ledger, store, config, size, note)
        timestamp_checkpoint(ledger, store, config, size, note)
        return outcomes
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tsa") as pool:
        stamped = pool.submit(timestamp_checkpoint, ledger, store, config, size, note)
        outcomes = witness_checkpoint(ledger, store, config, size, note)
        stamped.result()
    return outcomes


def timestamp_checkpoint(ledger: Ledger, store: ObjectStore, config: AnchorConfig, size: int, note: str) -> bool:
    """Get and keep a token over the checkpoint's bytes unless it has one. False when the
    authority failed (logged)."""
    tsa = config.tsa
    if tsa is None:
        return True
    issuer = token_issuer(tsa)
    if any(a.issuer == issuer for a in records.anchors(ledger, size=size, kind=records.RFC3161)):
        return True
    try:
        token, when = request_token(tsa, note.encode("utf-8"), config.timeout)
    except (TimestampError, ConfigError) as exc:
        log.warning("custody: warning: %s; checkpoint %d has no timestamp yet", exc, size)
        return False
    records.record_anchor(
        ledger, store, size=size, kind=records.RFC3161, issuer=issuer,
        body=base64.b64encode(token).decode("ascii"), data=token,
        time=times.format_utc(when),
    )
    return True

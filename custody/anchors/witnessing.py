"""The log's side of C2SP tlog-witness: send each new checkpoint to every configured witness,
keep their cosignatures, and ask them, when verifying, whether this ledger still extends what
they cosigned.

After a seal, each witness gets the checkpoint with a consistency proof from the size it last
cosigned (kept per witness in ``checkpoint_anchors``; on a 409 the size the witness reports is
used instead). A witness that cannot be reached is a warning, never an error: ingest goes on and
the next seal catches the witness up. A witness that reports a size larger than the ledger's, or
refuses the consistency proof, has caught a rolled-back, truncated or forked ledger: that is
logged as an error at once and reported by ``ledger verify`` (exit 3).
"""

from __future__ import annotations

import base64
import http.client
from concurrent.futures import ThreadPoolExecutor
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from custody import times
from custody.anchors import records
from custody.anchors.config import AnchorConfig, WitnessConfig
from custody.anchors.cosign import CosignatureError
from custody.errors import Finding, FindingKind
from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.ledger.database import Ledger
from custody.settings import Settings
from storage.base import ObjectStore

log = logging.getLogger("custody.anchors")

MAX_ANSWER = 1 << 16
Status = Literal["cosigned", "unreachable", "rolled-back", "forked", "refused"]


@dataclass(frozen=True)
class WitnessOutcome:
    """What one witness said about one checkpoint."""

    witness: str
    url: str
    status: Status
    size: int
    message: str
    witness_size: int | None = None
    line: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "witness": self.witness,
            "url": self.url,
            "status": self.status,
            "size": self.size,
            "witness_size": self.witness_size,
            "message": self.message,
        }


class _Unreachable(Exception):
    pass


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, str, bytes]:
    try:
        connection.request("POST", path, body, {"Content-Type": "text/plain; charset=utf-8"})
        response = connection.getresponse()
        data = response.read(MAX_ANSWER + 1)
        return response.status, response.getheader("Content-Type", ""), data[:MAX_ANSWER]
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise _Unreachable(str(exc) or type(exc).__name__) from exc


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, parts.port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    return connection, parts.path.rstrip("/") + "/add-checkpoint"


def request_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}"] + [base64.b64encode(h).decode("ascii") for h in proof]
    return ("\n".join(lines) + "\n\n" + note).encode("utf-8")


def _parse_size(content_type: str, data: bytes) -> int | None:
    text = data.decode("ascii", "replace").strip()
    if not content_type.startswith("text/x.tlog.size") or not text.isdigit():
        return None
    return int(text)


def submit(
    ledger: Ledger, witness: WitnessConfig, note: str, checkpoint: notes.Checkpoint, old: int, timeout: float
) -> WitnessOutcome:
    """Ask one witness to cosign ``checkpoint`` (signed ``note``), starting from size ``old``.
    Never raises for what the witness does; the outcome says it."""
    name, size = witness.issuer, checkpoint.size
    body_text = notes.format_checkpoint(checkpoint)
    connection, path = _connection(witness.url, timeout)
    try:
        for _attempt in range(3):
            if old > size:
                return WitnessOutcome(
                    name, witness.url, "rolled-back", size,
                    f"witness {name} at {witness.url} has cosigned a checkpoint of size {old}, but this "
                    f"ledger's checkpoint has size {size}: the ledger was rolled back or truncated",
                    old,
                )
            proof = ledger.with_nodes(lambda nodes: tree.consistency_proof(nodes, old, size)) if old else []
            try:
                status, content_type, data = _post(connection, path, request_body(old, proof, note))
            except _Unreachable as exc:
                return WitnessOutcome(name, witness.url, "unreachable", size, f"witness {name} at {witness.url} is unreachable: {exc}")
            if status == 200:
                try:
                    cosignature = witness.verifier.find(data.decode("utf-8"), body_text)
                except (CosignatureError, UnicodeDecodeError) as exc:
                    return WitnessOutcome(name, witness.url, "refused", size, f"witness {name} answered a bad cosignature: {exc}")
                if cosignature is None:
                    return WitnessOutcome(name, witness.url, "refused", size, f"witness {name} answered no cosignature by its key")
                return WitnessOutcome(name, witness.url, "cosigned", size, "cosigned", size, cosignature.line)
            if status == 409:
                held = _parse_size(content_type, data)
                if held is None:
                    return WitnessOutcome(name, witness.url, "refused", size, f"witness {name} answered 409 without a size")
                if held == old:
                    return WitnessOutcome(
                        name, witness.url, "forked", size,
                        f"witness {name} at {witness.url} holds a different root for size {held}: "
                        "this ledger is a fork of the one it cosigned",
                        held,
                    )
                old = held
                continue
            if status == 422:
                return WitnessOutcome(
                    name, witness.url, "forked", size,
                    f"witness {name} at {witness.url} refused the consistency proof from size {old}, the "
                    f"checkpoint it cosigned, to {size}: this ledger does not extend what it cosigned "
                    "(restored from an older copy, rewritten or forked)",
                    old,
                )
            message = data.decode("utf-8", "replace").strip().encode("unicode_escape").decode("ascii")[:200]
            hint = ""
            if status == 403:
                hint = " (after 'custody ledger rotate-key', the witness's operator must add the new key: 'custody witness add-log')"
            elif status == 404:
                hint = " (the witness does not know this log: its operator adds it with 'custody witness add-log')"
            return WitnessOutcome(name, witness.url, "refused", size, f"witness {name} answered {status}: {message}{hint}")
        return WitnessOutcome(name, witness.url, "refused", size, f"witness {name} kept changing its size")
    finally:
        connection.close()


def witness_checkpoint(
    ledger: Ledger, store: ObjectStore, config: AnchorConfig, size: int, note: str
) -> list[WitnessOutcome]:
    """Send checkpoint ``note`` (of ``size``) to every witness that has not cosigned it yet and
    record each cosignature (database and WORM). Problems are logged, never raised."""
    checkpoint = notes.parse_checkpoint(note.partition("\n\n")[0] + "\n")
    have = {a.issuer for a in records.anchors(ledger, size=size, kind=records.COSIGNATURE)}
    pending = [w for w in config.witnesses if w.issuer not in have]
    if not pending:
        return []
    last = records.last_cosigned(ledger, [w.issuer for w in pending])
    with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="witness") as pool:
        futures = [
            pool.submit(submit, ledger, witness, note, checkpoint, last[witness.issuer], config.timeout)
            for witness in pending
        ]
        outcomes = [future.result() for future in futures]
    for witness, outcome in zip(pending, outcomes):
        if outcome.status == "cosigned" and outcome.line is not None:
            records.record_anchor(
                ledger, store, size=size, kind=records.COSIGNATURE, issuer=witness.issuer,
                body=outcome.line, data=outcome.line.encode("utf-8"), time=_cosignature_time(outcome.line),
            )
        elif outcome.status == "unreachable":
            log.warning("custody: warning: %s; checkpoint %d is not cosigned by it yet (the next seal catches up)", outcome.message, size)
        elif outcome.status in ("rolled-back", "forked"):
            log.error("custody: INTEGRITY: %s; run 'custody ledger verify'", outcome.message)
        else:
            log.warning("custody: warning: %s", outcome.message)
    return outcomes


def _cosignature_time(line: str) -> str:
    from datetime import datetime

    blob = base64.b64decode(line.rstrip("\n").rsplit(" ", 1)[1])
    seconds = int.from_bytes(blob[4:12], "big")
    return times.format_utc(datetime.fromtimestamp(seconds, times.UTC))


@dataclass
class AnchorReport:
    """What ``ledger verify`` and ``audit`` say about the anchors."""

    quorum: int = 0
    witnesses: int = 0
    checkpoints: int = 0
    under_quorum: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[WitnessOutcome] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    timestamps: int = 0
    without_timestamp: list[int] = field(default_factory=list)
    tsa: bool = False

    def notices(self) -> list[str]:
        """Warnings for stderr: checkpoints under the quorum, witnesses not reached."""
        lines = []
        for entry in self.under_quorum:
            lines.append(
                f"custody: warning: checkpoint {entry['size']} has {entry['cosignatures']} of the "
                f"{self.quorum} witness cosignatures required"
            )
        for contact in self.contacts:
            if contact.status == "unreachable":
                lines.append(f"custody: warning: {contact.message}; not checked against it")
            elif contact.status == "refused":
                lines.append(f"custody: warning: {contact.message}")
        if self.without_timestamp:
            sizes = ", ".join(str(s) for s in self.without_timestamp[:10])
            more = f" and {len(self.without_timestamp) - 10} more" if len(self.without_timestamp) > 10 else ""
            lines.append(f"custody: warning: checkpoint(s) {sizes}{more} have no RFC 3161 timestamp")
        return lines

    def summary(self) -> str:
        """A clause for the one-line verdict ('' without anchors)."""
        text = ""
        if self.witnesses:
            agreed = sum(1 for c in self.contacts if c.status == "cosigned")
            text += (
                f"; {agreed} of {self.witnesses} witness(es) agree, "
                f"{self.checkpoints - len(self.under_quorum)} of {self.checkpoints} checkpoint(s) "
                f"have the quorum of {self.quorum} cosignatures"
            )
        if self.tsa or self.timestamps:
            text += f"; {self.timestamps} RFC 3161 timestamp(s) verified"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "quorum": self.quorum,
            "witnesses": self.witnesses,
            "checkpoints": self.checkpoints,
            "under_quorum": self.under_quorum,
            "contacts": [c.as_dict() for c in self.contacts],
            "timestamps": self.timestamps,
            "without_timestamp": self.without_timestamp,
        }


def check_anchors(
    ledger: Ledger, config: AnchorConfig, events: int, *, contact: bool = True
) -> AnchorReport:
    """Count each checkpoint's valid cosignatures from the configured witnesses (fewer than the
    quorum is reported in ``under_quorum``), and, with ``contact``, present the latest
    checkpoint to every witness: one that holds a larger tree than this ledger, or refuses
    the consistency proof, is an integrity finding naming the witness and both sizes."""
    report = AnchorReport(quorum=config.quorum, witnesses=len(config.witnesses), tsa=config.tsa is not None)
    if not config.configured:
        return report
    rows = ledger.checkpoint_rows()
    report.checkpoints = len(rows)
    _check_timestamps(ledger, config, rows, report)
    if not config.witnesses:
        return report
    by_size: dict[int, list[records.Anchor]] = {}
    for anchor in records.anchors(ledger, kind=records.COSIGNATURE):
        by_size.setdefault(anchor.size, []).append(anchor)
    by_issuer = {w.issuer: w for w in config.witnesses}
    for row in rows:
        body = row["note"].partition("\n\n")[0] + "\n"
        valid = []
        for anchor in by_size.get(row["size"], []):
            witness = by_issuer.get(anchor.issuer)
            if witness is None:
                continue
            try:
                witness.verifier.verify_line(anchor.body, body)
            except CosignatureError as exc:
                report.findings.append(
                    Finding(FindingKind.LEDGER_CORRUPT, f"checkpoint {row['size']}", f"the recorded cosignature of {anchor.issuer} does not verify: {exc}")
                )
                continue
            valid.append(anchor.issuer)
        if len(valid) < config.quorum:
            report.under_quorum.append({"size": row["size"], "cosignatures": len(valid), "witnesses": valid})
    if contact and rows:
        latest = rows[-1]
        checkpoint = notes.parse_checkpoint(latest["note"].partition("\n\n")[0] + "\n")
        for witness in config.witnesses:
            outcome = submit(ledger, witness, latest["note"], checkpoint, checkpoint.size, config.timeout)
            report.contacts.append(outcome)
            if outcome.status in ("rolled-back", "forked"):
                detail = outcome.message
                if outcome.status == "rolled-back" and (outcome.witness_size or 0) > events:
                    detail = (
                        f"witness {witness.issuer} at {witness.url} has cosigned a checkpoint of size "
                        f"{outcome.witness_size}, but this ledger has only {events} events (latest checkpoint "
                        f"{checkpoint.size}): the ledger was rolled back or truncated"
                    )
                elif outcome.status == "rolled-back":
                    detail = (
                        f"witness {witness.issuer} at {witness.url} has cosigned a checkpoint of size "
                        f"{outcome.witness_size}, but this ledger's latest checkpoint record is of size "
                        f"{checkpoint.size}: checkpoint records were removed"
                    )
                report.findings.append(
                    Finding(
                        FindingKind.LEDGER_CORRUPT, f"witness {witness.issuer}", detail,
                        extra={"witness_size": outcome.witness_size, "ledger_size": events, "witness_url": witness.url},
                    )
                )
    return report



def verify_anchors(ledger: Ledger, settings: Settings, events: int, *, contact: bool = True) -> AnchorReport:
    """``check_anchors`` with the configuration in ``settings``."""
    from custody.anchors.config import load_anchor_config

    return check_anchors(ledger, load_anchor_config(settings.config), events, contact=contact)


def _check_timestamps(ledger: Ledger, config: AnchorConfig, rows: Sequence[Mapping[str, Any]], report: AnchorReport) -> None:
    """Every recorded token must verify over its checkpoint's bytes with the configured CA."""
    from custody.anchors.timestamp import TimestampError, verify_token

    tokens: dict[int, list[records.Anchor]] = {}
    for anchor in records.anchors(ledger, kind=records.RFC3161):
        tokens.setdefault(anchor.size, []).append(anchor)
    for row in rows:
        found = tokens.get(row["size"], [])
        if not found:
            if config.tsa is not None:
                report.without_timestamp.append(row["size"])
            continue
        if config.tsa is None:
            continue
        for anchor in found:
            try:
                verify_token(config.tsa.ca, base64.b64decode(anchor.body), row["note"].encode("utf-8"))
            except TimestampError as exc:
                report.findings.append(
                    Finding(FindingKind.LEDGER_CORRUPT, f"checkpoint {row['size']}", f"its RFC 3161 timestamp from {anchor.issuer}: {exc}")
                )
                continue
            report.timestamps += 1

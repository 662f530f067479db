from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from custody import times
from cli.context import emit_json, settings_from
from cli.options import actor_option, json_option
from cli.progress import TerminalProgress
from cli.render import echo

if TYPE_CHECKING:
    from custody.audit.report import Level
    from custody.audit.shards import Shard
    from custody.audit.report import AuditReport


class _Bar(TerminalProgress):
    """Audit progress: objects checked, bytes hashed."""

    def __init__(self) -> None:
        super().__init__("MB/s hashed")

    def start(self, objects: int, bytes_to_hash: int) -> None:
        if objects >= 2:
            self.open(objects, f"auditing {objects} object(s)")

    def hashed(self, nbytes: int) -> None:
        self.count_bytes(nbytes)

    def checked(self, blake3: str) -> None:
        self.step()


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard:
    from custody.audit.shards import Shard
    from custody.errors import BadInput

    if value is None:
        return Shard()
    try:
        shard = Shard.parse(value)
    except BadInput as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc
    if shard.count > MAX_SLOTS:
        raise click.BadParameter(f"shard {shard.label}: N can be at most {MAX_SLOTS}", ctx, param)
    return shard


MAX_SLOTS = 1_000_000
"""The most shards, or rotation slots, an audit schedule may have."""


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _grace(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d{1,9})\s*([smhd]?)\s*", value)
    if match is None:
        raise click.BadParameter(f"{value!r}: write a duration such as 90s, 30m, 2h or 1d", ctx, param)
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _summary(report: AuditReport) -> list[str]:
    counts = report.counts()
    scope = f"shard {report.shard.label}"
    if report.rotation is not None:
        scope += f", rotation slot {report.slot} of {report.rotation} (slots 0-{report.rotation - 1})"
    ledger = report.ledger
    lines = [
        f"audit {report.level}, {scope}: {report.store}",
        f"  ledger: {ledger.events} events, {ledger.checkpoints_in_store} WORM checkpoint(s) checked"
        if ledger else "  ledger: not checked",
        f"  objects: {counts['objects']} checked (size, digests in metadata, retention, legal hold), "
        f"{counts['attachments']} attachment(s), {counts['disposed']} disposed",
        f"  re-hashed: {counts['rehashed']} object(s), {counts['bytes_hashed']:,} bytes",
        f"  store: {counts['listed']} key(s) listed, {counts['unrecorded']} unrecorded"
        + (f", {counts['in_flight']} in flight (being ingested; not judged)" if counts["in_flight"] else ""),
        "  canary: " + ("locks enforced" + (" (by this program only)" if report.worm == "program" else " by the server")
                        if report.canary_enforced else "NOT ENFORCED"),
    ]
    full = report.as_dict()["full_checks"]
    lines.append(
        f"  last full check: oldest {full['oldest'] or '-'}, never fully checked: {full['never']} object(s)"
    )
    return lines


@click.command("audit")
@click.option("--level", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="quick: ledger, existence, metadata, locks, unrecorded objects, canary. full: quick plus "
                   "every object's bytes re-hashed.")
@click.option("--rotation", type=click.IntRange(1, MAX_SLOTS), metavar="N",
              help="Also re-hash 1/N of the objects in each run, in turn, so each is re-hashed within N runs.")
@click.option("--shard", "shard", metavar="K/N", callback=_shard,
              help="Check only shard K of N (by digest); shards 1..N together cover every object once.")
@click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Objects checked in parallel.")
@click.option("--in-flight-grace", "grace", default="1h", show_default=True, metavar="DURATION", callback=_grace,
              help="An unrecorded object stored more recently than this (e.g. 90s, 30m, 2h) is taken to be "
                   "in the middle of an ingest: listed as in flight, not a finding.")
@actor_option("Who runs the audit")
@json_option("Print the whole report as JSON.")
@click.option("--metrics", type=click.Path(dir_okay=False, path_type=Path),
              help="Write Prometheus text-format metrics to FILE (node exporter textfile collector).")
@click.pass_context
def audit(ctx: click.Context, level: Level, rotation: int | None, shard: Shard, workers: int, grace: timedelta,
          actor: str | None, as_json: bool, metrics: Path | None) -> None:
    """Check that every preserved object is there, unaltered, locked and accounted for.

    quick: the ledger verifies (hash chain, Merkle tree, signatures, WORM checkpoints); every
    recorded object exists at its recorded version with its recorded size and digests in the
    store's metadata, under COMPLIANCE retention no earlier than recorded, with the legal hold
    the ledger says; no object in the store is unrecorded; the canary lock self-test passes.
    quick does not read the bytes: a changed byte is found only by full or --rotation.
    An unrecorded object stored less than --in-flight-grace ago is one an ingest running
    now has stored and not yet recorded: it is listed as in flight, not as a finding, and
    the next audit judges it again.

    full: quick, plus every object's bytes re-read and hashed (BLAKE3) in parallel.

    Every run is recorded in the ledger as an 'audited' event (level, shard, rotation slot,
    counts and every finding), then a checkpoint is signed. Exits 0 when nothing was found,
    3 on any finding, 5 when the store or the database cannot be reached (nothing recorded).

    \b
    Examples:
      custody audit
      custody audit --level full --workers 16 --json > audit.json
      custody audit --rotation 30 --metrics /var/lib/node_exporter/textfile/custody_audit.prom
      custody audit --level quick --rotation 7 --shard 3/8
    """
    from custody.audit.rehash import LocalPrehash
    from custody.audit.report import AuditRequest
    from custody.errors import BadInput, CustodyError, IntegrityFailure
    from storage.errors import StorageError

    try:
        request = AuditRequest(level, shard, rotation, workers, grace)
    except BadInput as exc:
        raise click.UsageError(str(exc), ctx) from exc
    bar = _Bar()
    try:
        settings = settings_from(ctx, actor)
        prehash = None
        if request.level == "full" and settings.store_url.startswith("file://"):
            from storage.url import open_store

            prehash = LocalPrehash.start(open_store(settings.store_url), request)
        from custody.audit.run import run_audit  # after the prehash started: it imports the ledger layer
        from cli.context import workspace
        from custody.actors.identity import require_allowed

        ws = workspace(ctx, actor)
        require_allowed(ws, "audited")
        report = run_audit(ws, request, progress=bar, prehash=prehash)
    except (CustodyError, StorageError) as exc:
        if metrics is not None and exc.exit_code == 5:
            from custody.audit.metrics import failure_metrics, write_metrics

            previous = metrics.read_text(encoding="utf-8") if metrics.is_file() else None
            write_metrics(metrics, failure_metrics(previous, shard, level, times.now()))
        raise
    finally:
        bar.close()
    from custody.actors.verify import verify_actors

    from custody.refusals import refusal_counts

    signatures = verify_actors(ws.ledger, ws.settings.config)
    refusals = refusal_counts(ws.ledger)
    if as_json:
        emit_json({**report.as_dict(), "signatures": signatures.as_dict(), "refusals": refusals})
    else:
        for line in _summary(report):
            echo(line)
        for finding in report.findings:
            echo(f"{finding.kind}: {finding.subject}: {finding.message}")
            if finding.expected is not None or finding.found is not None:
                algorithm = f"{finding.algorithm}: " if finding.algorithm else ""
                echo(f"    {algorithm}expected {finding.expected}, found {finding.found}")
        for item in report.in_flight:
            when = "recorded while the audit ran" if item.recorded_during_audit else f"stored {item.as_dict()['stored_at']}"
            echo(f"in flight: {item.key} ({when})")
        echo(
            f"signatures: {signatures.signed} event(s) signed by enrolled people; "
            f"{len(signatures.unsigned)} event(s) NOT signed by an enrolled person"
            + (f" (events {_ranges(signatures.unsigned)})" if signatures.unsigned else "")
        )
        for finding in signatures.findings:
            echo(f"{finding.kind}: {finding.subject}: {finding.message}")
        if refusals["count"]:
            kinds = ", ".join(f"{kind} {n}" for kind, n in refusals["by_kind"].items())
            echo(f"refused attempts: {refusals['count']} in the ledger ({kinds}; events {_ranges(refusals['events'])}); "
                 "'custody log' shows each")
        verdict = "OK: nothing found" if report.ok else f"FINDINGS: {len(report.findings)}"
        echo(f"{verdict} (recorded as event {report.seq})")
    if report.seal_error:
        echo(f"custody: warning: the checkpoint after this audit could not be stored: {report.seal_error}", err=True)
    if metrics is not None:
        from custody.audit.metrics import prometheus_metrics, write_metrics

        try:
            write_metrics(metrics, prometheus_metrics(report))
        except CustodyError as exc:
            if report.ok:
                raise
            echo(f"custody: error: {exc}", err=True)
    if not report.ok or not signatures.ok:
        raise IntegrityFailure([*report.findings, *signatures.findings]).already_shown()


def _ranges(numbers: list[int]) -> str:
    """``0-4, 7, 9-12`` for sorted event numbers."""
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(parts)


COMMANDS = [audit]

from __future__ import annotations

import time
from typing import Any

import click

from cli.context import emit_json, workspace
from cli.expect_options import EXPECT_HELP, expect_options
from cli.options import actor_option, json_option
from cli.ingest_report import IngestBar, echo_summary, summary
from cli.render import echo


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@actor_option("Who is ingesting", mentions_default=True)
@click.option("--note", help="A note recorded with every file's event.")
@click.option("--incident", "incident_id", help="Link every preserved file to this incident (it must exist).")
@click.option("--camera", help="Camera serial number, recorded with the link to the incident.")
@click.option("--officer", help="The recording officer's badge, recorded with the link to the incident.")
@json_option("Print one JSON record per file; the summary goes to stderr as one JSON line.")
@expect_options
@click.pass_context
def ingest(
    ctx: click.Context,
    /,
    paths: tuple[str, ...],
    actor: str | None,
    note: str | None,
    incident_id: str | None,
    camera: str | None,
    officer: str | None,
    as_json: bool,
    **expect: Any,
) -> None:
    """Preserve files: hash, store under retention, and record them in the ledger.

    Directories are walked recursively in name order. FIFOs, sockets, devices and broken
    links are skipped without being read; a file that changes while it is read is not
    recorded. Bytes that are already preserved are recorded as another acquisition.
    Exits 2 after processing everything else if any input was skipped or failed; exits 3 if a
    digest declared by the --expect manifest does not match, or a file it lists is absent.

    Each audio or video file is probed and its packet hash list kept; that is done in this
    process (PyAV) where the file demuxes cleanly, else with ffprobe, which CUSTODY_FFPROBE or
    CUSTODY_DEMUXER=ffprobe select for every file.

    On a terminal one progress bar covers the whole job (files and bytes, rate, ETA); the
    command ends with a summary: recorded, already stored, skipped and failed, with the
    reasons. With --json the summary is the last line of stderr: {"summary": {...}}.

    \b
    Examples:
      custody ingest clip.mp4
      custody ingest /media/dock3/ --actor tech-0412 --note "Dock 3 nightly export"
      custody ingest --json export/ > ingest-report.json
      custody ingest BWC-0042/ --incident 2026-1101-ICE-01 --camera SN-0042 --officer 10231
      custody ingest export/ --expect export/SHA256SUMS
      custody ingest export/ --expect export/audit.csv --expect-columns path=File,digest=MD5
      custody ingest dock3/ --sidecar '{stem}.json' --sidecar '{stem}_audit.pdf'
    """
    from cli.commands.media_cmd import ingest_inspector
    from cli.render import printable
    from custody.errors import BadInput, IntegrityFailure
    from custody.evidence.expected import as_findings
    from custody.evidence.ingest import CheckpointNotSigned, ingest_paths

    if (camera or officer) and not incident_id:
        raise click.UsageError("--camera and --officer are recorded with a link: give --incident too")
    from custody.actors.identity import require_allowed

    from cli import expect_options as expecting

    paths_read, extra = expecting.build(list(paths), expect)
    ws = workspace(ctx, actor, ledger_in_background=True)
    require_allowed(ws, "ingested")
    if incident_id:
        from custody.evidence.linkable import require_linkable

        require_linkable(ws, incident_id)
    from custody.audit.leftovers import describe_leftovers, sweep_leftovers

    swept = sweep_leftovers(ws.store)  # staging files of writers that were killed
    if swept:
        echo(f"custody: {describe_leftovers(swept)}", err=True)
    bar = IngestBar()
    inspector = ingest_inspector(ws.settings.config)
    if extra.get("expected") is not None:
        inspector.declared_start = extra["expected"].declared_start
    unsigned: CheckpointNotSigned | None = None
    try:
        results = ingest_paths(
            ws,
            paths_read,
            incident=incident_id,
            camera=camera,
            officer=officer,
            note=note,
            progress=bar,
            inspector=inspector,
            **extra,
        )
    except CheckpointNotSigned as exc:  # recorded, but not sealed: say what was recorded, then why
        results, unsigned = exc.results, exc
    finally:
        inspector.close()  # the C2PA library's worker, whatever ended the ingest (SIGTERM included)
        bar.close()
    inspector.annotate(results)
    problems = [r for r in results if r.status in ("skipped", "failed")]
    if as_json:
        links = expecting.sidecar_links(extra)
        emit_json([r.as_dict() | ({"sidecar_of": links[r.path]} if r.path in links else {}) for r in results])
    else:
        for result in results:
            digest = (result.blake3 or "-")[:16]
            echo(f"{result.status:<15} {digest:<16} {printable(result.path)}")
    for result in results:
        if result.warning:
            echo(f"custody: warning: {printable(result.path)}: {printable(result.warning)}", err=True)
        if result.reason:
            echo(f"custody: {result.status}: {printable(result.path)}: {printable(result.reason)}", err=True)
    findings = expecting.report(results, expecting.sidecar_links(extra))
    counts = summary(results, time.monotonic() - bar.started)
    counts["staging_leftovers_removed"] = sum(1 for item in swept if item.removed)
    echo_summary(counts, as_json)
    if unsigned is not None:
        raise unsigned
    if findings:
        raise IntegrityFailure(as_findings(results)).already_shown()
    if problems:
        raise BadInput(f"{len(problems)} of {len(results)} file(s) not preserved").already_shown()


ingest.help = (ingest.help or "") + "\n\n" + EXPECT_HELP
COMMANDS = [ingest]

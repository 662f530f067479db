from __future__ import annotations

import click

from cli.context import emit_json, workspace
from cli.options import json_option
from cli.render import echo


@click.command("verify")
@click.argument("refs", nargs=-1, required=True)
@json_option("Print the results as JSON.")
@click.pass_context
def verify(ctx: click.Context, refs: tuple[str, ...], as_json: bool) -> None:
    """Re-read preserved objects and compare their BLAKE3 with the ledger.

    REF is a BLAKE3 prefix (at least 8 hex characters), a file path, or a directory (every file
    in it, walked as ingest walks it); for a file, it also says
    whether that file's bytes are the preserved ones. Every reference is checked; exits 3 if
    any object is missing, unreadable or altered, or a file is not preserved.

    \b
    Examples:
      custody verify 1f0c3a9e
      custody verify ./copy-from-usb/clip.mp4 --json
      custody verify /media/dock3/export/
    """
    from custody.errors import BadInput, FindingKind, IntegrityFailure
    from custody.evidence.verify import verify_and_record

    results = verify_and_record(workspace(ctx), list(refs))
    if as_json:
        emit_json([r.as_dict() for r in results])
    else:
        for result in results:
            state = "OK" if result.ok else "FAILED"
            extra = ""
            if result.file_matches is True:
                extra = " (the file's bytes are the preserved ones)"
            echo(f"{state:<7} {result.ref}  {result.blake3 or '-'}{extra}")
            for finding in result.findings:
                echo(f"  {finding.kind}: {finding.message}", err=True)
    findings = [f for r in results for f in r.findings]
    if findings and all(f.kind == FindingKind.BAD_REFERENCE for f in findings):
        raise BadInput("; ".join(f"{f.subject}: {f.message}" for f in findings)).already_shown()
    if not all(r.ok for r in results):
        raise IntegrityFailure(findings).already_shown()


COMMANDS = [verify]

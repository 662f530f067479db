from __future__ import annotations

import json

import click

from cli.context import emit_json, workspace
from cli.options import json_option
from cli.render import echo


@click.command("log")
@click.argument("ref", required=False)
@json_option("Print every event as JSON, with its canonical bytes ('leaf').")
@click.pass_context
def log(ctx: click.Context, ref: str | None, as_json: bool) -> None:
    """Print the custody events, oldest first (all of them, or those about REF).

    In --json, 'leaf' is the exact UTF-8 string whose SHA-256 (prefixed by a 0x00 byte) is the
    event's 'hash', so anyone can recompute it.

    \b
    Examples:
      custody log
      custody log 1f0c3a9e --json
    """
    from custody.evidence.references import resolve
    from custody.refusals import REFUSED, describe

    ws = workspace(ctx)
    evidence = None
    if ref is not None:
        evidence = resolve(ws.ledger, ref).blake3
    events = ws.ledger.events(evidence=evidence)
    if as_json:
        emit_json([e.as_dict() for e in events])
        return
    for event in events:
        subject = " ".join(f"{k}={v[:16] if k == 'evidence' else v}" for k, v in sorted(event.subject.items()))
        echo(f"#{event.seq:<5} {event.time}  {event.actor:<12} {event.action:<10} {subject}")
        if event.action == REFUSED:
            echo(f"       {describe(event)}")
            continue
        summary = {k: v for k, v in event.details.items() if k in ("source", "note", "size", "retention", "recovered")}
        if "source" in summary:
            summary["source"] = summary["source"].get("path")
        if summary:
            echo(f"       {json.dumps(summary, ensure_ascii=False, sort_keys=True)}")


COMMANDS = [log]

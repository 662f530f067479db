from __future__ import annotations

import click

from cli.context import emit_json, workspace


@click.group("ledger")
def ledger() -> None:
    """Check and prove the custody ledger.

    \b
    Examples:
      custody ledger verify
    """


@ledger.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def verify_ledger(ctx: click.Context, as_json: bool) -> None:
    """Recompute the whole hash chain and report every broken event.

    Exits 3 naming each event whose content no longer matches its hash or whose link to the
    previous event is broken; 0 when the whole chain holds.

    \b
    Examples:
      custody ledger verify
      custody ledger verify --json
    """
    ws = workspace(ctx)
    count, findings = ws.ledger.verify_chain()
    if as_json:
        emit_json({"events": count, "ok": not findings, "findings": [f.as_dict() for f in findings]})
    elif not findings:
        click.echo(f"ledger OK: {count} events, hash chain intact")
    else:
        for finding in findings:
            click.echo(f"{finding.subject}: {finding.message}", err=True)
        click.echo(f"ledger CORRUPT: {len(findings)} finding(s) in {count} events", err=True)
    if findings:
        ctx.exit(3)

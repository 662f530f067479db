"""``custody link --sidecar FILE --to REF``: the sidecar half of the ``link`` command."""

from __future__ import annotations

import click

from cli.context import emit_json, workspace
from cli.render import echo


def link_sidecar_command(ctx: click.Context, incident_link: tuple[str | None, ...], sidecar: str | None,
                         to: str | None, actor: str | None, as_json: bool) -> None:
    """``incident_link``: REF, --incident, --camera and --officer, which a sidecar link refuses."""
    if sidecar is None or to is None:
        raise click.UsageError("give both --sidecar FILE and --to REF")
    if any(value is not None for value in incident_link):
        raise click.UsageError(
            "--sidecar links to a recording (--to); REF, --incident, --camera and --officer link to an incident: "
            "run them as two commands"
        )
    from custody.actors.identity import require_allowed
    from custody.evidence.sidecar_linking import link_file

    ws = workspace(ctx, actor)
    require_allowed(ws, "sidecar-linked")
    done = link_file(ws, sidecar, to)
    if as_json:
        emit_json(done)
        return
    if done["ingested"] is not None:
        echo(f"{done['ingested']['status']} {done['sidecar'][:16]} {done['ingested']['path']}")
    if done["already_linked"]:
        echo(f"sidecar {done['sidecar'][:16]} was already linked to {done['recording'][:16]}")
    else:
        echo(f"linked sidecar {done['sidecar'][:16]} to {done['recording'][:16]} (event {done['seq']})")

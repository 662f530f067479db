from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.context import emit_json, workspace
from cli.options import actor_option, json_option
from cli.render import echo

if TYPE_CHECKING:
    from custody.cases.disposition import DisposalRun


@click.command("dispose")
@click.option("--expired", is_flag=True, required=True, help="Select objects whose retention has expired.")
@click.option("--confirm", is_flag=True, help="Really delete them (default: list only).")
@actor_option("Who disposes")
@json_option()
@click.pass_context
def dispose(ctx: click.Context, expired: bool, confirm: bool, actor: str | None, as_json: bool) -> None:
    """Destroy recordings whose retention has expired, as the law requires.

    Lists objects whose retention has passed, that carry no legal hold and whose category says
    they must be destroyed. Dry run by default; with --confirm each version is deleted and a
    'disposed' event keeps its digests forever. Objects under retention or hold are never
    deleted. Once people are enrolled, --confirm records a disposal request instead, carried out
    when a second enrolled person approves it ('custody approve REQUEST').

    \b
    Examples:
      custody dispose --expired
      custody dispose --expired --confirm --json
    """
    from custody.actors.approvals import request, two_people_needed
    from custody.cases.disposition import dispose_expired

    ws = workspace(ctx, actor)
    if confirm and two_people_needed(ws):
        due = dispose_expired(ws, confirm=False).items
        if not due:
            if as_json:
                emit_json({"confirmed": False, "request": None, "objects": []})
            else:
                echo("nothing has expired")
            return
        asked = request(ws, "disposal", {"objects": [i.blake3 for i in due]},
                        f"destroy {len(due)} object(s) whose retention expired")
        if as_json:
            emit_json({"confirmed": False, "request": asked.as_dict(), "objects": [i.as_dict() for i in due]})
        else:
            echo(f"disposal request {asked.seq} recorded for {len(due)} object(s); a second enrolled person "
                       f"must approve it: custody approve {asked.seq}")
        return
    run = dispose_expired(ws, confirm=confirm)
    items = run.items
    if as_json:
        emit_json({"confirmed": confirm, "objects": [i.as_dict() for i in items],
                   "refused": [r.as_dict() for r in run.refusals]})
        _end_refused(run)
        return
    for item in items:
        state = "disposed" if item.done else ("refused" if confirm else "would dispose")
        echo(f"{state:<14} {item.blake3[:16]}  {item.size:>12} bytes  {item.category}, retained until {item.retained_until}")
    if not items:
        echo("nothing has expired")
    elif not confirm:
        echo(f"{len(items)} object(s) due; run again with --confirm to delete them", err=True)
    _end_refused(run)


def _end_refused(run: DisposalRun) -> None:
    """Exit 4 when the store refused a deletion (each refusal is an event already)."""
    refused = run.refused()
    if refused is not None:
        for refusal in run.refusals:
            echo(f"refused ({refusal.refused_by}), event {refusal.seq}: {refusal.reason}", err=True)
        raise refused.already_shown()


COMMANDS = [dispose]

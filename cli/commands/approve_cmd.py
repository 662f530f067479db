from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cli.context import emit_json, workspace
from cli.options import json_option
from cli.render import echo

if TYPE_CHECKING:
    from custody.home import Workspace
    from custody.actors.approvals import CarryOut


def carry_out(ws: Workspace) -> CarryOut:
    """What an approved request does: the disposal or the hold release it asked for."""

    def run(kind: str, params: dict[str, Any], request_seq: int) -> dict[str, Any]:
        if kind == "disposal":
            from custody.cases.disposition import dispose_expired

            # only what the request named and the approver saw: an object that expired since is
            # not in it, and one held since is no longer due
            asked = [str(b) for b in params.get("objects", [])]
            run = dispose_expired(ws, confirm=True, reason=f"retention expired; disposal request {request_seq} approved",
                                  only=asked, request=request_seq)
            kept = sorted(set(asked) - {item.blake3 for item in run.items if item.done})
            return {"disposed": [item.as_dict() for item in run.items if item.done], "kept": kept,
                    "refused": [refusal.as_dict() for refusal in run.refusals]}
        from custody.cases.holds import release_hold

        released = release_hold(
            ws, params["hold"], authority=params["authority"], reason=f"{params['reason']} (request {request_seq} approved)",
            request=request_seq,
        )
        return {"hold": released.as_dict()}

    return run


@click.command("approve")
@click.argument("request", type=int, required=False)
@click.option("--list", "list_requests", is_flag=True, help="List requests and whether they were approved.")
@json_option()
@click.pass_context
def approve(ctx: click.Context, request: int | None, list_requests: bool, as_json: bool) -> None:
    """Approve REQUEST (the event number of a disposal or hold-release request) and carry it out.

    Destroying recordings and releasing a legal hold need two enrolled people: one requests
    ('dispose --confirm', 'hold release'), a second, whose role may approve it, runs this with
    their own key. Approving one's own request is refused (exit 4). An object of a disposal
    request held or retained since, or one the store refuses to delete, is kept: each is a
    'refused' event, the rest is carried out, and the exit code is 4.

    \b
    Examples:
      custody approve --list
      custody --key ~/.ssh/sup-17_ed25519 approve 42 --json
    """
    from custody.actors.approvals import all_requests, approve as approve_request
    from custody.errors import PolicyRefused, RefusedBy

    ws = workspace(ctx)
    if list_requests or request is None:
        requests = all_requests(ws.ledger)
        if as_json:
            emit_json([r.as_dict() for r in requests.values()])
            return
        for found in requests.values():
            state = f"approved by {found.approved_by} (event {found.approved_seq})" if found.approved_seq is not None else "waiting"
            echo(f"request {found.seq}: {found.kind} by {found.requested_by} at {found.time}: {state}")
        if not requests:
            echo("no requests", err=True)
        return
    done = approve_request(ws, request, carry_out(ws))
    refused = done.outcome.get("refused", [])
    if as_json:
        emit_json(done.as_dict())
    else:
        echo(f"request {done.seq} ({done.kind}) approved by {done.approved_by} (event {done.approved_seq}) and carried out")
        kept = done.outcome.get("kept", [])
        if kept:
            echo(f"{len(kept)} object(s) of the request kept: no longer due or refused: " + ", ".join(b[:16] for b in kept))
    if refused:
        for refusal in refused:
            echo(f"refused ({refusal['refused_by']}), event {refusal['seq']}: {refusal['reason']}", err=True)
        raise PolicyRefused(f"{len(refused)} disposal(s) of request {done.seq} refused", refused_by=RefusedBy(refused[-1]["refused_by"]),
                            recorded=refused[-1]["seq"]).already_shown()


COMMANDS = [approve]

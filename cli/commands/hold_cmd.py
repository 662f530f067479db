from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cli.context import emit_json, workspace
from cli.options import actor_option, json_option
from cli.render import echo

if TYPE_CHECKING:
    from custody.cases.holds import LegalHold


@click.group("hold")
def hold() -> None:
    """Named legal holds on stored evidence.

    \b
    Examples:
      custody hold place SAO-26-00812 --authority "Cook County SAO, J. Smith" --reason "felony review" --incident 2026-1101-ICE-01
      custody hold list
    """


def _render(found: LegalHold, as_json: bool) -> None:
    if as_json:
        emit_json(found.as_dict())
        return
    state = "active" if found.active else "released"
    echo(f"hold {found.name} ({state}): {len(found.objects)} object(s); authority {found.authority}; reason {found.reason}")


@hold.command("place")
@click.argument("name")
@click.option("--authority", required=True, help="The order, case number and who ordered it.")
@click.option("--reason", required=True, help="Why the evidence is held.")
@click.option("--incident", "incident_id", help="Hold every object of this incident, and any linked later.")
@click.argument("refs", nargs=-1)
@actor_option("Who places it")
@json_option("Print the hold as JSON.")
@click.pass_context
def place(ctx: click.Context, name: str, authority: str, reason: str, incident_id: str | None, refs: tuple[str, ...],
          actor: str | None, as_json: bool) -> None:
    """Place a legal hold on stored objects (the store's own legal hold), then record it.

    \b
    Examples:
      custody hold place SAO-26-00812 --authority "Cook County SAO" --reason "felony review" --incident 2026-1101-ICE-01
      custody hold place LIT-7 --authority "N.D. Ill. 1:26-cv-0411 preservation order" --reason litigation 1f0c3a9e 77aa01b2
    """
    from custody.cases.holds import place_hold
    from custody.evidence.references import resolve_preserved

    from custody.actors.identity import require_allowed

    ws = workspace(ctx, actor)
    objects = [resolve_preserved(ws.ledger, ref).blake3 for ref in refs]
    require_allowed(ws, "hold-placed", {"incident": incident_id} if incident_id else
                    {"evidence": objects[0]} if len(objects) == 1 else None)
    _render(place_hold(ws, name, authority=authority, reason=reason, incident=incident_id, objects=objects), as_json)


@hold.command("release")
@click.argument("name")
@click.option("--authority", required=True, help="The order or decision that ends the hold.")
@click.option("--reason", required=True, help="Why it is released.")
@actor_option("Who releases it")
@json_option("Print the hold as JSON.")
@click.pass_context
def release(ctx: click.Context, name: str, authority: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Release a legal hold. An object stays locked if another hold or its retention applies.

    Once people are enrolled, this records a release request, carried out when a second
    enrolled person approves it ('custody approve REQUEST').

    \b
    Examples:
      custody hold release SAO-26-00812 --authority "final disposition, order of 2027-03-02" --reason "case closed"
    """
    from custody.actors.approvals import request, two_people_needed
    from custody.cases.holds import all_holds, release_hold

    ws = workspace(ctx, actor)
    if two_people_needed(ws):
        found = all_holds(ws.ledger).get(name)
        if found is None or not (found.active or found.scope.get("incident")):
            raise click.BadParameter(f"no active legal hold named {name!r}; see 'custody hold list'", param_hint="NAME")
        asked = request(ws, "hold-release", {"hold": name, "authority": authority, "reason": reason},
                        f"release legal hold {name}")
        if as_json:
            emit_json({"request": asked.as_dict(), "hold": found.as_dict()})
        else:
            echo(f"release of hold {name} requested (request {asked.seq}); a second enrolled person must "
                       f"approve it: custody approve {asked.seq}")
        return
    _render(release_hold(ws, name, authority=authority, reason=reason), as_json)


@hold.command("list")
@json_option()
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List legal holds, active and released.

    \b
    Examples:
      custody hold list --json
    """
    from custody.cases.holds import all_holds

    holds = all_holds(workspace(ctx).ledger)
    if as_json:
        emit_json([h.as_dict() for h in holds.values()])
        return
    for found in holds.values():
        _render(found, False)


COMMANDS = [hold]

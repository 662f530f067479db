from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from cli.commands.coverage_cmd import coverage
from cli.context import emit_json, workspace
from cli.options import actor_option, json_option
from cli.render import echo

if TYPE_CHECKING:
    from custody.cases.incident_state import IncidentState

CREDENTIALS = click.Choice(["verified", "refused", "not-attempted", "not-applicable"])


def incident_fields(command: Callable[..., None]) -> Callable[..., None]:
    """The documented incident fields, as options (shared by create and amend)."""
    options = [
        click.option("--occurred-at", help="When it happened: RFC 3339 with offset, e.g. 2026-11-01T14:03:00-06:00."),
        click.option("--location", help="Where it happened."),
        click.option("--agency", "agencies", multiple=True, help="Agency involved (repeatable): ICE, CBP, ... free text allowed."),
        click.option("--supervisor-name", help="The federal supervisory officer's name, as stated."),
        click.option("--supervisor-badge", help="The federal supervisory officer's badge number, as stated."),
        click.option("--credentials", type=CREDENTIALS, help="Whether credentials were verified or refused."),
        click.option("--use-of-force", help="Use of force, described."),
        click.option("--detentions", type=click.IntRange(0, 1_000_000), help="Number of people detained."),
        click.option("--injuries", help="Injuries, described."),
        click.option("--ems-summoned/--no-ems-summoned", default=None, help="Whether emergency medical services were called."),
        click.option("--aid-rendered/--no-aid-rendered", default=None, help="Whether aid was rendered."),
        click.option("--violation", "violation_categories", multiple=True, metavar="CATEGORY",
                     help="Category of alleged violation (repeatable): see 'custody publish taxonomy'."),
        click.option("--citation", "violations", multiple=True,
                     help="Alleged violation of state or local law, free text (repeatable), e.g. a citation."),
        click.option("--district", help="Police district (the finest place a public release may show)."),
        click.option("--report-number", help="The police report number."),
        click.option("--note", help="A free-text note."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _render(state: IncidentState, as_json: bool) -> None:
    if as_json:
        emit_json(state.as_dict())
        return
    echo(f"incident {state.incident}")
    for name, value in sorted(state.fields.items()):
        shown = ", ".join(value) if isinstance(value, list) else value
        echo(f"  {name.replace('_', ' ') + ':':<20}{shown}")
    for referral in state.referrals:
        echo(f"  referred:           to {referral['to']} ({referral['reference']}){' FELONY' if referral.get('felony') else ''}")
    echo(f"  evidence:           {len(state.evidence)} linked object(s)")
    for blake3, info in sorted(state.evidence.items()):
        echo(f"    {blake3[:16]}  camera {info.get('camera', '-')}  officer {info.get('officer', '-')}")
    if state.flags_evidence:
        echo(f"  flagged encounter:  {', '.join(state.flags_evidence)}")
    echo("  history:")
    for event in state.history:
        extra = f" ({event.details.get('reason')})" if event.details.get("reason") else ""
        echo(f"    #{event.seq:<5} {event.time}  {event.actor:<12} {event.action}{extra}")


@click.group("incident")
def incident() -> None:
    """Document encounters: create, amend, refer, show, list.

    \b
    Examples:
      custody incident create 2026-1101-ICE-01 --occurred-at 2026-11-01T14:03:00-06:00 --agency ICE
      custody incident show 2026-1101-ICE-01 --json
    """


@incident.command("create")
@click.argument("incident_id", metavar="ID")
@incident_fields
@actor_option("Who records it")
@json_option("Print the incident as JSON.")
@click.pass_context
def create(ctx: click.Context, /, incident_id: str, actor: str | None, as_json: bool, **fields: Any) -> None:
    """Record a new incident.

    \b
    Examples:
      custody incident create 2026-1101-ICE-01 \\
        --occurred-at 2026-11-01T14:03:00-06:00 --location "3400 W Cermak Rd" \\
        --agency ICE --agency CBP --supervisor-name "J. Doe" --supervisor-badge 4471 \\
        --credentials refused --use-of-force "taser deployed" --detentions 2 \\
        --injuries "abrasions to the face" --ems-summoned --aid-rendered \\
        --violation battery --citation "720 ILCS 5/12-3" --report-number RD-JH123456
    """
    from custody.cases.incidents import create_incident

    _render(create_incident(workspace(ctx, actor), incident_id, fields), as_json)


@incident.command("amend")
@click.argument("incident_id", metavar="ID")
@incident_fields
@click.option("--reason", required=True, help="Why the record is corrected (required).")
@actor_option("Who corrects it")
@json_option("Print the incident as JSON.")
@click.pass_context
def amend(ctx: click.Context, /, incident_id: str, reason: str, actor: str | None, as_json: bool, **fields: Any) -> None:
    """Correct an incident: a new event naming each field changed, and why.

    \b
    Examples:
      custody incident amend 2026-1101-ICE-01 --supervisor-badge 4417 --reason "badge misread; see bodycam 00:03:12"
    """
    from custody.cases.incidents import amend_incident

    _render(amend_incident(workspace(ctx, actor), incident_id, fields, reason), as_json)


@incident.command("refer")
@click.argument("incident_id", metavar="ID")
@click.option("--to", "to", required=True, help="Who it is referred to.")
@click.option("--reference", required=True, help="The recipient's reference (case or intake number).")
@click.option("--felony", is_flag=True, help="The referral concerns felony evidence.")
@actor_option("Who refers it")
@json_option("Print the incident as JSON.")
@click.pass_context
def refer(ctx: click.Context, incident_id: str, to: str, reference: str, felony: bool, actor: str | None, as_json: bool) -> None:
    """Record a referral (e.g. of felony evidence to the county prosecutor).

    \b
    Examples:
      custody incident refer 2026-1101-ICE-01 --to "Cook County State's Attorney" --reference SAO-26-00812 --felony
    """
    from custody.cases.incidents import refer_incident

    _render(refer_incident(workspace(ctx, actor), incident_id, to, reference, felony), as_json)


@incident.command("show")
@click.argument("incident_id", metavar="ID")
@json_option()
@click.pass_context
def show(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """Show an incident's current state and its full history.

    \b
    Examples:
      custody incident show 2026-1101-ICE-01
    """
    from custody.cases.incident_state import require_incident

    ws = workspace(ctx)
    _render(require_incident(ws.ledger, incident_id), as_json)


@incident.command("list")
@json_option()
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List every incident.

    \b
    Examples:
      custody incident list --json
    """
    from custody.cases.incident_state import list_incidents

    states = list_incidents(workspace(ctx).ledger)
    if as_json:
        emit_json([s.as_dict(history=False) for s in states])
        return
    for state in states:
        echo(
            f"{state.incident:<24} {state.fields.get('occurred_at', '-'):<26} "
            f"{', '.join(state.fields.get('agencies', [])) or '-':<12} {len(state.evidence)} object(s)"
        )


@click.command("link")
@click.argument("ref", required=False)
@click.option("--incident", "incident_id", help="The incident to link to.")
@click.option("--camera", help="Camera serial number.")
@click.option("--officer", help="The recording officer's badge.")
@click.option("--sidecar", metavar="FILE", help="Link this file (or preserved object) as a sidecar of --to.")
@click.option("--to", "to", metavar="REF", help="The recording the --sidecar describes.")
@actor_option("Who links it")
@json_option("Print the link as JSON.")
@click.pass_context
def link(ctx: click.Context, ref: str | None, incident_id: str | None, camera: str | None, officer: str | None,
         sidecar: str | None, to: str | None, actor: str | None, as_json: bool) -> None:
    """Link a preserved object to an incident (many-to-many), or a sidecar to its recording.

    Linking to an incident with use of force, detentions, injuries or a referral flags the
    object (longer retention); the object inherits the incident's legal holds (a
    'hold-inherited' event each, recorded by whoever links: no role to place holds needed).

    A sidecar (a vendor's audit-trail PDF or CSV, a camera's metadata JSON or XML) is
    preserved first if its bytes are not, then tied to the recording by a 'sidecar-linked'
    event; 'custody show' lists it and packages carry it next to the recording.

    \b
    Examples:
      custody link 1f0c3a9e --incident 2026-1101-ICE-01 --camera SN-0042 --officer 10231
      custody link --sidecar export/BWC-0042_audit.pdf --to 1f0c3a9e
    """
    from custody.cases.incidents import link_evidence
    from custody.evidence.references import resolve_preserved

    if sidecar is not None or to is not None:
        from cli.commands.link_sidecar import link_sidecar_command

        link_sidecar_command(ctx, (ref, incident_id, camera, officer), sidecar, to, actor, as_json)
        return
    if ref is None or incident_id is None:
        raise click.UsageError("give REF and --incident ID (or --sidecar FILE --to REF)")
    ws = workspace(ctx, actor)
    resolved = resolve_preserved(ws.ledger, ref)
    from custody.evidence.linkable import require_linkable

    require_linkable(ws, incident_id, resolved.blake3)
    event = link_evidence(ws, resolved.blake3, incident_id, camera=camera, officer=officer)
    if as_json:
        emit_json({"blake3": resolved.blake3, "incident": incident_id, "seq": event.seq})
        return
    echo(f"linked {resolved.blake3[:16]} to {incident_id} (event {event.seq})")


incident.add_command(coverage)

COMMANDS = [incident, link]

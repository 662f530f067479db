from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cli.context import emit_json, settings_from, workspace
from cli.options import actor_option, json_option
from cli.render import echo

if TYPE_CHECKING:
    from custody.home import Workspace


@click.group("retention")
def retention() -> None:
    """Retention categories; flag or re-categorize evidence (retention only lengthens).

    \b
    Examples:
      custody retention categories
      custody retention flag --incident 2026-1101-ICE-01 --reason "use of force"
      custody retention set 1f0c3a9e --category flagged --reason "evidentiary value"
    """


@retention.command("categories")
@json_option()
@click.pass_context
def categories(ctx: click.Context, as_json: bool) -> None:
    """List the retention categories with their source (shipped defaults + config.toml).

    \b
    Examples:
      custody retention categories --json
    """
    from custody.cases.retention import load_categories

    found = load_categories(settings_from(ctx).config)
    if as_json:
        emit_json([c.as_dict() for c in found.values()])
        return
    for category in found.values():
        if category.legal_hold:
            keep = "until final disposition (legal hold)"
        else:
            assert category.duration is not None
            keep = f"at least {category.duration.days} days" if category.duration.days else f"at least {category.duration.seconds} s"
            keep += f" from {category.starts}"
        echo(f"{category.name:<12} {keep}; then {category.after}")
        echo(f"{'':<12} source: {category.source}")


def _render(changes: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(changes)
        return
    for change in changes:
        echo(f"{change['blake3'][:16]}  {change['previous_category']} -> {change['category']}  "
                   f"until {change['previous_until']} -> {change['until']}")
    if not changes:
        echo("nothing to change (already flagged)")


@retention.command("flag")
@click.argument("refs", nargs=-1)
@click.option("--incident", "incident_id", help="Flag every object linked to this incident.")
@click.option("--reason", required=True, help="Why the encounter is flagged (complaint, use of force, ...).")
@actor_option("Who flags it")
@json_option("Print the changes as JSON.")
@click.pass_context
def flag(ctx: click.Context, refs: tuple[str, ...], incident_id: str | None, reason: str, actor: str | None, as_json: bool) -> None:
    """Flag evidence: kept at least the 'flagged' duration from now (applied in the store).

    \b
    Examples:
      custody retention flag 1f0c3a9e --reason "complaint filed"
      custody retention flag --incident 2026-1101-ICE-01 --reason "detention"
    """
    from custody.cases.retention import flag_objects

    ws = workspace(ctx, actor)
    targets = _targets(ws, refs, incident_id)
    _require_allowed(ws, targets)
    changes = flag_objects(ws, targets, reason=reason)
    _render(changes, as_json)


@retention.command("set")
@click.argument("refs", nargs=-1, required=True)
@click.option("--category", required=True, help="The new category (see 'custody retention categories').")
@click.option("--reason", default="category set", help="Why.")
@actor_option("Who sets it")
@json_option("Print the changes as JSON.")
@click.pass_context
def set_(ctx: click.Context, refs: tuple[str, ...], category: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Put evidence in a retention category. A change that would shorten the retention is
    refused (exit 4) and nothing changes.

    \b
    Examples:
      custody retention set 1f0c3a9e --category flagged --reason "officer request"
    """
    from custody.cases.retention import set_category

    ws = workspace(ctx, actor)
    targets = _targets(ws, refs, None)
    _require_allowed(ws, targets)
    changes = set_category(ws, targets, category, reason)
    _render(changes, as_json)


def _require_allowed(ws: Workspace, targets: list[str]) -> None:
    """Refuse a person whose role may not extend retention before the store is changed."""
    from custody.actors.identity import require_allowed

    require_allowed(ws, "retention-extended", {"evidence": targets[0]} if len(targets) == 1 else None)


def _targets(ws: Workspace, refs: tuple[str, ...], incident_id: str | None) -> list[str]:
    from custody.cases.incident_state import require_incident
    from custody.evidence.references import resolve_preserved

    if bool(refs) == bool(incident_id):
        raise click.UsageError("give either REF... or --incident ID")
    if incident_id:
        return sorted(require_incident(ws.ledger, incident_id).evidence)
    return [resolve_preserved(ws.ledger, ref).blake3 for ref in refs]


COMMANDS = [retention]

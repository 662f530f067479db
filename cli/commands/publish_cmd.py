from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.context import emit_json, workspace
from cli.options import actor_option, json_option


def _safe(text: Any) -> str:
    """Text from outside with control characters escaped."""
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in str(text))


@click.group("publish")
def publish() -> None:
    """Public data: aggregated counts of documented incidents, and checking a release.

    \b
    Examples:
      custody publish stats --as-of latest --period quarter --out releases/2026-Q4
      custody publish verify releases/2026-Q4
      custody publish verify releases/2026-Q4 --recompute
      custody publish taxonomy
    """


@publish.command("stats")
@click.option("--as-of", "as_of", required=True, metavar="SIZE|latest",
              help="The signed checkpoint (its tree size) to count at; 'latest' signs one first if needed.")
@click.option("--period", type=click.Choice(["month", "quarter", "year"]), default="month", show_default=True,
              help="The period of each row.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new or empty directory to write the release to.")
@actor_option("Who publishes")
@json_option("Print the release's summary as JSON.")
@click.pass_context
def stats(ctx: click.Context, as_of: str, period: str, out: Path, actor: str | None, as_json: bool) -> None:
    """Compute the public counts at a checkpoint and write a release.

    Only events before the checkpoint count; an amendment counts as of its time. The release
    holds one CSV per table, data.json and datapackage.json (Frictionless), index.html (tables
    and charts), the signed checkpoint, and the 'published' ledger event naming the SHA-256 of
    each file with its inclusion proof. Counts from 1 to 10 (configurable, [publish]
    suppress_min/suppress_max) are suppressed, with complementary suppression. Exits 2 for an
    unknown checkpoint or a non-empty --out.

    \b
    Examples:
      custody publish stats --as-of latest --period month --out release-2026-11
      custody publish stats --as-of 1200 --period year --out release-2026 --json
    """
    from custody.actors.identity import require_allowed
    from custody.publish.release import publish_stats

    ws = workspace(ctx, actor)
    require_allowed(ws, "published")  # before anything is computed or written
    report = publish_stats(ws, as_of, period, out)
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(f"published {report.out}: counts by {report.period} at checkpoint {report.checkpoint}, "
               f"recorded as event {report.event} (proved in checkpoint {report.proof_checkpoint})")
    for table in report.suppressed:
        click.echo(f"  {table['table']:<24} suppressed {table['primary']} primary, {table['complementary']} complementary")
    if report.revision:
        click.echo(f"  {len(report.revision['changes'])} published value(s) of earlier periods changed since the "
                   f"release of event {report.revision['previous']['event']}")


@publish.command("verify")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--key", "trust_key", metavar="VKEY",
              help="The ledger's verifier key you expect (text name+keyid+base64, or a file holding it).")
@click.option("--recompute", is_flag=True, help="Also recompute every count from the ledger (needs ledger access).")
@click.option("--trust-witness", "trust_witnesses", metavar="VKEY", multiple=True,
              help="A witness whose cosignature counts (its key name+keyid+base64, or a file holding it); repeatable.")
@click.option("--witness-quorum", type=click.IntRange(min=0), default=None,
              help="How many trusted witnesses must have cosigned the release's checkpoint (default: all given).")
@json_option("Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, directory: Path, trust_key: str | None, recompute: bool,
           trust_witnesses: tuple[str, ...], witness_quorum: int | None, as_json: bool) -> None:
    """Check a release: its files, its event and proofs, and that every CSV cell says what
    data.json says; with --recompute, every count and the revision statement.

    Without --recompute no database, store or configuration is needed. Exits 3 on any finding
    (a changed file, a bad proof, a CSV cell that differs from data.json, a count that differs
    from the recomputation, a revision that names the wrong earlier release or omits or invents
    a change, fewer trusted witnesses' cosignatures than --witness-quorum in cosignatures.txt),
    2 if DIRECTORY is not a release directory or a key is unusable.

    \b
    Examples:
      custody publish verify release-2026-11
      custody publish verify release-2026-11 --key 'host/custody/1a2b3c4d+0badc0de+AQ...'
      custody publish verify release-2026-11 --recompute --json
      custody publish verify release-2026-11 --key vkey --trust-witness w1.vkey --trust-witness w2.vkey
    """
    from custody.errors import IntegrityFailure
    from custody.package.verify import read_verifier_key
    from custody.publish.verify import recompute as recompute_release
    from custody.publish.verify import verify_release

    from cli.commands.package_cmd import _witness_key

    trusted = read_verifier_key(trust_key) if trust_key else None
    witnesses = [_witness_key(value) for value in trust_witnesses]
    quorum = len(witnesses) if witness_quorum is None else witness_quorum
    if quorum > len(witnesses):
        raise click.BadParameter(f"{quorum} is more than the {len(witnesses)} --trust-witness given", param_hint="--witness-quorum")
    check = verify_release(directory, trusted, witnesses, quorum)
    if recompute and check.event is not None:
        recompute_release(check, workspace(ctx).ledger)
    if as_json:
        emit_json(check.as_dict())
    else:
        for finding in check.findings:
            click.echo(f"custody: {_safe(finding.subject)}: {_safe(finding.message)}", err=True)
        for cell in check.mismatched_cells[:50]:
            click.echo(f"  {_safe(cell['table'])} {_safe(cell['period'])} {_safe(cell['column'])}: release "
                       f"{_safe(cell['release'])}, recomputed {_safe(cell['recomputed'])}", err=True)
        if check.ok:
            click.echo(f"verified: {check.files_checked} file(s) match published event {check.as_dict()['event']}, "
                       "which is proved in the ledger" + (
                           f"; all {check.cells_compared} values match the recomputation" if check.recomputed else "")
                       + (f"; cosigned by {', '.join(check.cosigned_by)}" if check.cosigned_by else ""))
            if check.key_source != "given":
                click.echo("note: checked against the release's own key; pass --key with the key the agency "
                           "publishes", err=True)
        else:
            click.echo(f"NOT VERIFIED: {len(check.findings)} finding(s)")
    if not check.ok:
        raise IntegrityFailure(check.findings).already_shown()


@publish.command("taxonomy")
@json_option()
@click.pass_context
def taxonomy(ctx: click.Context, as_json: bool) -> None:
    """List the categories of alleged violations (for 'custody incident create --violation').

    The shipped list is overridden or extended in config.toml under [violations.categories.NAME].

    \b
    Examples:
      custody publish taxonomy
      custody publish taxonomy --json
    """
    from cli.context import settings_from
    from custody.cases.violations import load_taxonomy

    categories = load_taxonomy(settings_from(ctx).config)
    if as_json:
        emit_json([c.as_dict() for c in categories.values()])
        return
    for category in categories.values():
        retired = " (retired)" if category.retired else ""
        click.echo(f"{category.name:<24} {_safe(category.title)}{retired}")
        for citation in category.citations:
            click.echo(f"{'':<24}   {_safe(citation)}")


COMMANDS = [publish]

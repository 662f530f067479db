from __future__ import annotations

import click

from cli.context import emit_json, settings_from


@click.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def init(ctx: click.Context, as_json: bool) -> None:
    """Create the data directory: ledger database, local store and signing key.

    Safe to run again: an existing key or database is never overwritten. The signing key is
    written with mode 0600; its public verifier key is printed, for recipients to pin.

    \b
    Examples:
      custody init
      custody --home /srv/custody init --json
    """
    from custody.home import init_home

    report = init_home(settings_from(ctx))
    if as_json:
        emit_json(
            {
                "home": str(report.home),
                "database": report.database,
                "store": report.store,
                "key_created": report.key_created,
                "database_created": report.database_created,
                "verifier_key": report.verifier_key,
            }
        )
        return
    click.echo(f"data directory: {report.home}")
    click.echo(f"ledger:         {report.database} ({'created' if report.database_created else 'exists'})")
    click.echo(f"store:          {report.store}")
    click.echo(f"signing key:    {'created' if report.key_created else 'exists (kept)'}")
    click.echo(f"verifier key:   {report.verifier_key}")

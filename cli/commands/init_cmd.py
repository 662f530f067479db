from __future__ import annotations

import click

from cli.context import emit_json, settings_from


@click.command("init")
@click.option("--store", "store_url", help="Object store URL to use from now on (saved in config.toml).")
@click.option("--create-bucket", is_flag=True, help="Create the S3 bucket with Object Lock, versioning and a default COMPLIANCE retention.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def init(ctx: click.Context, store_url: str | None, create_bucket: bool, as_json: bool) -> None:
    """Create the data directory: ledger database, local store and signing key.

    Safe to run again: an existing key or database is never overwritten. The signing key is
    written with mode 0600; its public verifier key is printed, for recipients to pin.

    With an S3 store, the bucket must have Object Lock enabled; a bucket without it is refused
    (exit 5). Credentials come from the standard AWS chain (environment, profile, role).

    \b
    Examples:
      custody init
      custody --home /srv/custody init --json
      custody init --store 's3://evidence?endpoint_url=http://127.0.0.1:7480&region=us-east-1' --create-bucket
    """
    from dataclasses import replace

    from custody.home import init_home

    settings = settings_from(ctx)
    if store_url:
        settings = replace(settings, store_url=store_url)
    report = init_home(settings, create_bucket=create_bucket, remember_store=bool(store_url))
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


COMMANDS = [init]

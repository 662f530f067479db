from __future__ import annotations

import click

from cli.context import emit_json, workspace


@click.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show what is known of a preserved object.

    Digests, size, store key and version, the retention and legal hold the store reports now,
    the first ingest and every acquisition.

    \b
    Examples:
      custody show 1f0c3a9e
      custody show ./clip.mp4 --json
    """
    from custody.inspect import show_object

    record = show_object(workspace(ctx), ref)
    if as_json:
        emit_json(record)
        return
    for name in ("blake3", "sha256", "size", "store", "store_key", "version", "store_status", "legal_hold"):
        click.echo(f"{name + ':':<14}{record[name]}")
    retention = record["retention"]
    click.echo(f"{'retention:':<14}{retention['mode'] + ' until ' + retention['until'] if retention else '-'}")
    click.echo(f"{'category:':<14}{record['category']}")
    click.echo(f"{'holds:':<14}{', '.join(record['holds']) or '-'}")
    click.echo(f"{'incidents:':<14}{', '.join(record['incidents']) or '-'}")
    first = record["first_ingest"]
    click.echo(f"{'first ingest:':<14}event {first['seq']} at {first['time']} by {first['actor']}")
    click.echo("acquisitions:")
    for acquisition in record["acquisitions"]:
        source = acquisition["source"] or {}
        click.echo(f"  event {acquisition['seq']:<6} {acquisition['time']}  {acquisition['actor']:<12} {source.get('path', '-')!r}")


COMMANDS = [show]

"""``custody incident coverage``: the time an incident's preserved recordings cover."""

from __future__ import annotations

from datetime import timedelta

import click

from cli.context import emit_json, workspace
from cli.options import json_option
from cli.render import echo


@click.command("coverage")
@click.argument("incident_id", metavar="ID")
@click.option("--join", "join_ms", type=click.IntRange(0, 3_600_000), default=1000, show_default=True,
              metavar="MS", help="Recordings of one camera this close (milliseconds) count as continuous.")
@json_option()
@click.pass_context
def coverage(ctx: click.Context, incident_id: str, join_ms: int, as_json: bool) -> None:
    """Show which stretches of time the incident's recordings cover, per officer and camera.

    Each recording covers its start (the camera's creation time, a vendor's sidecar or the
    file's modification time: the source is named) plus its duration. Lists each track's
    recordings and gaps, the overlaps between cameras and the stretches no camera covers.

    \b
    Examples:
      custody incident coverage 2026-1101-ICE-01
      custody incident coverage 2026-1101-ICE-01 --json > coverage.json
    """
    from custody.media.coverage import coverage_lines, incident_coverage

    result = incident_coverage(workspace(ctx).ledger, incident_id, timedelta(milliseconds=join_ms))
    if as_json:
        emit_json(result.as_dict())
        return
    for line in coverage_lines(result):
        echo(line)

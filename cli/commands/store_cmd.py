from __future__ import annotations

import click

from cli.context import emit_json, workspace
from cli.options import actor_option, json_option
from cli.render import echo


@click.group("store")
def store() -> None:
    """Inspect the object store.

    \b
    Examples:
      custody store check
      custody --store 's3://evidence?endpoint_url=http://127.0.0.1:7480' store check --json
    """


@store.command("check")
@actor_option("Who runs the check")
@json_option("Print the result as JSON.")
@click.pass_context
def check(ctx: click.Context, actor: str | None, as_json: bool) -> None:
    """Test what the store really enforces, with a locked canary object.

    Writes a small canary under canary/ with a short COMPLIANCE retention, then tries to delete
    that version, to shorten its retention and to switch it to GOVERNANCE. All three must be
    refused. The result is recorded in the ledger. Exits 0 when enforced, 3 when not.

    \b
    Examples:
      custody store check
      custody store check --json
    """
    from custody.errors import Finding, FindingKind, IntegrityFailure
    from custody.evidence.storecheck import check_store

    result = check_store(workspace(ctx, actor))
    if as_json:
        emit_json(result.as_dict())
    else:
        echo(f"store: {result.store}")
        for probe in result.probes:
            echo(f"  {probe.action:<22} {'refused' if probe.refused else 'ALLOWED'}: {probe.detail}")
        if result.enforced and result.worm == "program":
            echo("verdict: enforced by this program only (a local store; root can still delete files)")
        elif result.enforced:
            echo("verdict: enforced by the storage server")
        else:
            echo("verdict: NOT ENFORCED: this store lets locked evidence be deleted or weakened")
        echo(f"recorded as event {result.seq}", err=True)
    if result.seal_error:
        echo(f"custody: warning: the checkpoint after this check could not be stored: {result.seal_error}", err=True)
    if not result.enforced:
        refused = ", ".join(p.action for p in result.probes if not p.refused) or "no lock probe ran"
        raise IntegrityFailure(
            [Finding(FindingKind.STORE_NOT_ENFORCING, result.store, f"the store allowed: {refused}")]
        ).already_shown()


COMMANDS = [store]

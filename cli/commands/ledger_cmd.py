from __future__ import annotations

import click

from cli.context import emit_json, workspace


@click.group("ledger")
def ledger() -> None:
    """Check and prove the custody ledger (a Merkle tree with signed checkpoints).

    \b
    Examples:
      custody ledger verify
      custody ledger key > ledger.vkey
      custody ledger prove 1f0c3a9e > event.proof
    """


@ledger.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify_ledger(ctx: click.Context, as_json: bool) -> None:
    """Verify the whole ledger against its signed WORM checkpoints.

    Checks the hash chain, the Merkle tree, every checkpoint's signature, that every checkpoint
    in the object store is consistent with the ledger, and that none covers more events than the
    ledger has (a truncated or rolled-back database). Checks every event's SSH signature and the
    signer's enrollment and role at that point in the log (revoked key, wrong role, unknown key,
    an enrolled name on an unsigned event), and says how many events no enrolled person signed.
    Exits 3 naming each finding.

    \b
    Examples:
      custody ledger verify
      custody ledger verify --json
    """
    from custody.actors.verify import verify_actors
    from custody.ledger.seal import verify_ledger as verify

    ws = workspace(ctx)
    report = verify(ws.ledger, ws.store, ws.verifier())
    actors = verify_actors(ws.ledger, ws.settings.config)
    report.findings.extend(actors.findings)
    if as_json:
        emit_json({**report.as_dict(), "actors": actors.as_dict()})
    elif report.ok:
        click.echo(
            f"ledger OK: {report.events} events, hash chain and Merkle tree intact, "
            f"{report.checkpoints_in_store} WORM checkpoint(s) consistent (latest covers {report.latest_checkpoint})"
        )
    else:
        for finding in report.findings:
            click.echo(f"{finding.subject}: {finding.message}", err=True)
        click.echo(f"ledger CORRUPT: {len(report.findings)} finding(s) in {report.events} events", err=True)
    if not as_json:
        click.echo(
            f"signatures: {actors.signed} event(s) signed by enrolled people, all checked; "
            f"{len(actors.unsigned)} event(s) NOT signed by an enrolled person",
            err=not report.ok,
        )
    if not report.ok:
        ctx.exit(3)


@ledger.command("checkpoint")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def checkpoint(ctx: click.Context, as_json: bool) -> None:
    """Sign a checkpoint of the ledger now, store it in WORM storage, and print it.

    The output is a C2SP signed note (tlog-checkpoint): origin, tree size, base64 root, then
    the Ed25519 signature line.

    \b
    Examples:
      custody ledger checkpoint
      custody ledger checkpoint --json
    """
    ws = workspace(ctx)
    signed = ws.seal(force=True)
    if signed is None:
        raise click.UsageError("the ledger has no events yet; there is nothing to checkpoint")
    if as_json:
        emit_json(signed.as_dict())
    else:
        click.echo(signed.note, nl=False)


@ledger.command("key")
@click.pass_context
def key(ctx: click.Context) -> None:
    """Print the ledger's verifier key (name+keyid+base64), for recipients to pin.

    \b
    Examples:
      custody ledger key > ledger.vkey
    """
    from cli.context import settings_from
    from custody.ledger.seal import load_verifier

    settings = settings_from(ctx)
    click.echo(load_verifier(settings.verifier_key_path, settings.key_path).to_text())


@ledger.command("prove")
@click.argument("ref")
@click.option("--event", "seq", type=int, help="Prove this event (by sequence number) instead of REF's ingest.")
@click.pass_context
def prove(ctx: click.Context, ref: str, seq: int | None) -> None:
    """Print a C2SP tlog-proof that an event is in the ledger.

    By default the event is REF's first ingest; the proof holds the event's index, the inclusion
    hashes and the signed checkpoint it is proved against.

    \b
    Examples:
      custody ledger prove 1f0c3a9e > ingest.proof
      custody ledger prove 1f0c3a9e --event 17
    """
    from custody.ledger.seal import prove_event
    from custody.evidence.verify import resolve

    ws = workspace(ctx)
    if seq is None:
        resolved = resolve(ws.ledger, ref)
        row = ws.ledger.evidence_row(resolved.blake3) if resolved.blake3 else None
        if row is None:
            raise click.BadParameter(f"{ref}: not a preserved object", param_hint="REF")
        seq = int(row["first_seq"])
    click.echo(prove_event(ws.ledger, ws.store, ws.signer(), seq), nl=False)


COMMANDS = [ledger]

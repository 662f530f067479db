from __future__ import annotations

from pathlib import Path

import click

from cli.context import emit_json, workspace
from cli.options import json_option
from cli.render import echo


@click.group("ledger")
def ledger() -> None:
    """Check and prove the custody ledger (a Merkle tree with signed checkpoints).

    \b
    Examples:
      custody ledger verify
      custody ledger key > ledger.vkey
      custody ledger prove 1f0c3a9e > event.proof
      custody ledger consistency 17 42 > 17-to-42.proof
    """


@ledger.command("verify")
@json_option("Print the report as JSON.")
@click.pass_context
def verify_ledger(ctx: click.Context, as_json: bool) -> None:
    """Verify the whole ledger against its signed WORM checkpoints.

    Checks the hash chain, the Merkle tree, every checkpoint's signature, that every checkpoint
    in the object store is consistent with the ledger, and that none covers more events than the
    ledger has (a truncated or rolled-back database). Checks every event's SSH signature and the
    signer's enrollment and role at that point in the log (revoked key, wrong role, unknown key,
    an enrolled name on an unsigned event), by the roles recorded in the ledger at that point
    (its roles-set events; the shipped roles before the first), and says how many events no
    enrolled person signed.
    With witnesses configured ([anchors] in
    config.toml), also counts each checkpoint's cosignatures against the quorum (reported, not a
    failure) and presents the latest checkpoint to every witness: a witness that cosigned a
    larger tree than this ledger has, or that refuses the consistency proof, is a finding.
    Exits 3 naming each finding.

    \b
    Examples:
      custody ledger verify
      custody ledger verify --json
    """
    from custody.actors.verify import verify_actors
    from custody.anchors.verification import verify_all
    from custody.errors import IntegrityFailure

    ws = workspace(ctx)
    report, anchors = verify_all(ws.ledger, ws.store, ws.settings, ws.verifier())
    actors = verify_actors(ws.ledger, ws.settings.config)
    report.findings.extend(actors.findings)
    if as_json:
        emit_json({**report.as_dict(), "actors": actors.as_dict(), "anchors": anchors.as_dict()})
    else:
        for line in anchors.notices():
            echo(line, err=True)
    if as_json:
        pass
    elif report.ok:
        echo(
            f"ledger OK: {report.events} events, hash chain and Merkle tree intact, "
            f"{report.checkpoints_in_store} WORM checkpoint(s) consistent (latest covers {report.latest_checkpoint})"
            + anchors.summary()
        )
    else:
        for finding in report.findings:
            echo(f"{finding.subject}: {finding.message}", err=True)
        echo(f"ledger CORRUPT: {len(report.findings)} finding(s) in {report.events} events", err=True)
    if not as_json:
        echo(
            f"signatures: {actors.signed} event(s) signed by enrolled people, all checked; "
            f"{len(actors.unsigned)} event(s) NOT signed by an enrolled person",
            err=not report.ok,
        )
        echo(actors.roles_summary(), err=not report.ok)
    if not report.ok:
        raise IntegrityFailure(report.findings).already_shown()


@ledger.command("checkpoint")
@json_option()
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
    echo(load_verifier(settings.verifier_key_path, settings.key_path).to_text())


@ledger.command("prove")
@click.argument("ref")
@click.option("--event", "seq", type=click.IntRange(0, 2**53 - 1), help="Prove this event (by sequence number) instead of REF's ingest.")
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
    from custody.evidence.references import resolve_preserved

    ws = workspace(ctx)
    if seq is None:
        seq = int(resolve_preserved(ws.ledger, ref).row["first_seq"])
    click.echo(prove_event(ws.ledger, ws.store, ws.signer(), seq), nl=False)


@ledger.command("rotate-key")
@click.option(
    "--with-backup",
    "backup",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The backup key file made by 'custody init' (when the signing key is lost).",
)
@json_option("Print the result as JSON.")
@click.pass_context
def rotate_key(ctx: click.Context, backup: Path | None, as_json: bool) -> None:
    """Replace the ledger's signing key, recorded by an event signed by the old key.

    A new signing key and a new backup key are made; a key-rotated event, signed by the current
    key (or, with --with-backup, by the backup key kept offline since 'custody init') and by the
    new key, names them; every later checkpoint is signed by the new key. Verification follows
    the chain from the root keys in root.vkeys. The old key is kept as signing.key.retired-<id>.
    Give witnesses the new key ('custody witness add-log'). Move the new backup.key offline.

    \b
    Examples:
      custody ledger rotate-key
      custody ledger rotate-key --with-backup /media/offline/backup.key
    """
    from custody.actors.identity import require_allowed

    ws = workspace(ctx)
    require_allowed(ws, "key-rotated")  # before any key file is made
    rotation = ws.rotate_key(backup)
    if as_json:
        emit_json(rotation.as_dict())
        return
    echo(f"key rotated (event {rotation.seq}, authorized by the {'backup key' if rotation.authorized_by == 'backup' else 'old key'})")
    echo(f"new verifier key: {rotation.new_key}")
    echo(f"new backup key:   {rotation.backup_key} (move {ws.settings.home / 'backup.key'} offline)", err=True)


@ledger.command("publish")
@click.argument("target")
@json_option("Print the result as JSON.")
@click.pass_context
def publish(ctx: click.Context, target: str, as_json: bool) -> None:
    """Publish the ledger's hashes as a C2SP tlog-tiles log in TARGET: a directory or
    s3://BUCKET/PREFIX.

    Writes TARGET/checkpoint (the latest signed checkpoint with its witness cosignatures) and
    the hash tiles TARGET/tile/<L>/<N>[.p/<W>]: hashes only, never event contents. Run it
    again after new events: only new and grown tiles are written, and the checkpoint last, so
    a reader never sees a checkpoint whose tiles are missing. Anyone can mirror TARGET and
    check, with any tlog-tiles client (e.g. Go's golang.org/x/mod/sumdb/tlog), that a later
    publication extends an earlier one and that an event is in the log. Refuses (exit 3) when
    the ledger no longer extends what TARGET already holds.

    On S3, tiles are sent with Cache-Control "public, max-age=31536000, immutable" and the
    checkpoint with a short max-age, for serving the prefix as a public static site (give the
    bucket a public-read policy for it). Credentials come from boto3's standard chain, as for
    the evidence store; the endpoint and region from ?endpoint_url=...&region=..., else from
    the evidence store's URL.

    \b
    Examples:
      custody ledger publish /srv/www/custody-log
      custody ledger publish ./public-log --json
      custody ledger publish s3://city-public-log/custody
      custody ledger publish 's3://public-log/custody?endpoint_url=https://rgw.example.org'
    """
    result = workspace(ctx).publish_log(target)
    if as_json:
        emit_json(result.as_dict())
    else:
        echo(
            f"published {result.size} entries to {result.directory} ({result.tiles_written} tile(s) written, "
            f"{result.previous_size} entries were published before; {result.cosignatures} cosignature(s))"
        )


@ledger.command("consistency")
@click.argument("old_size", type=click.IntRange(min=0))
@click.argument("new_size", type=click.IntRange(min=0), required=False)
@click.pass_context
def consistency(ctx: click.Context, old_size: int, new_size: int | None) -> None:
    """Print an RFC 9162 consistency proof from OLD_SIZE to a signed checkpoint.

    Proves that the tree of NEW_SIZE events (default: the latest signed checkpoint; it must be
    the size of a checkpoint this ledger signed) extends the tree of OLD_SIZE events: a holder
    of a checkpoint of OLD_SIZE checks that nothing before it was changed or removed.

    \b
    Output (the layout of a C2SP tlog-witness add-checkpoint body):
      old OLD_SIZE
      one base64 proof hash per line (RFC 9162 section 2.1.4 order)
      an empty line, then the signed checkpoint of NEW_SIZE, verbatim

    Exits 2 if NEW_SIZE was never checkpointed or OLD_SIZE exceeds it.

    \b
    Examples:
      custody ledger consistency 17
      custody ledger consistency 17 42 > 17-to-42.proof
    """
    from custody.ledger.consistency import ledger_consistency

    click.echo(ledger_consistency(workspace(ctx).ledger, old_size, new_size), nl=False)


COMMANDS = [ledger]

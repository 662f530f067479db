from __future__ import annotations

from pathlib import Path

import click

from cli.context import emit_json, settings_from
from cli.options import json_option
from cli.render import echo


@click.command("init")
@click.option("--store", "store_url", help="Object store URL to use from now on (saved in config.toml).")
@click.option("--create-bucket", is_flag=True, help="Create the S3 bucket with Object Lock, versioning and a default COMPLIANCE retention.")
@click.option("--admin", "admin_name", help="Enroll the first administrator under this name (needs --admin-key).")
@click.option(
    "--admin-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The first administrator's SSH ed25519 key: a private key file, the .pub of a key in ssh-agent, "
    "or a PKCS#11 URI of a key in an HSM (made with 'custody actor pubkey --generate --key URI'); "
    "the enrollment is signed with it. Without --admin the ledger stays in unsigned station mode.",
)
@click.option(
    "--hsm",
    "hsm_uri",
    help="Keep the ledger's signing key in an HSM: a PKCS#11 URI (pkcs11:token=T;object=LABEL?module-path=LIB"
    "&pin-source=file:PINFILE); the Ed25519 key is generated in the token unless it is there.",
)
@json_option("Print the result as JSON.")
@click.pass_context
def init(ctx: click.Context, store_url: str | None, create_bucket: bool, admin_name: str | None,
         admin_key: Path | None, hsm_uri: str | None, as_json: bool) -> None:
    """Create the data directory: ledger database, local store and signing key.

    Safe to run again: an existing key or database is never overwritten. The signing key is
    written with mode 0600; its public verifier key is printed, for recipients to pin.

    With an S3 store, the bucket must have Object Lock enabled; a bucket without it is refused
    (exit 5). Credentials come from the standard AWS chain (environment, profile, role).

    With --admin NAME --admin-key KEY the first administrator is enrolled (an 'actor-enrolled'
    event signed by that key), and the roles (shipped, overridden by config.toml) are recorded
    as their act (a 'roles-set' event); they then enroll everyone else ('custody actor enroll')
    and record changed roles with 'custody actor roles set'.

    \b
    Examples:
      custody init
      custody init --admin admin-1 --admin-key ~/.ssh/id_ed25519
      custody init --admin admin-1 --admin-key 'pkcs11:token=admin;object=admin-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/root/pin'
      custody --home /srv/custody init --json
      custody init --store 's3://evidence?endpoint_url=http://127.0.0.1:7480&region=us-east-1' --create-bucket
    """
    from dataclasses import replace

    from custody.home import init_home

    settings = settings_from(ctx)
    if store_url:
        settings = replace(settings, store_url=store_url)
    if (admin_name is None) != (admin_key is None):
        raise click.UsageError("give --admin NAME and --admin-key KEY together")
    report = init_home(settings, create_bucket=create_bucket, remember_store=bool(store_url), hsm_uri=hsm_uri)
    admin = None
    roles_seq = None
    if admin_name is not None and admin_key is not None:
        from custody.actors.enrollment import enroll_first_admin
        from custody.actors.roles_log import roles_in_force
        from custody.home import open_workspace

        ws = open_workspace(settings)
        ctx.find_root().obj["workspace"] = ws  # a second first administrator is a refusal to record
        admin = enroll_first_admin(ws, admin_name, admin_key)
        roles_seq = roles_in_force(ws.ledger, ws.settings.config).seq
    if as_json:
        emit_json(
            {
                "home": str(report.home),
                "database": report.database,
                "store": report.store,
                "key_created": report.key_created,
                "database_created": report.database_created,
                "verifier_key": report.verifier_key,
                "admin": admin.as_dict() if admin is not None else None,
                "roles_seq": roles_seq,
                "backup_key": report.backup_key,
            }
        )
        return
    echo(f"data directory: {report.home}")
    echo(f"ledger:         {report.database} ({'created' if report.database_created else 'exists'})")
    echo(f"store:          {report.store}")
    echo(f"signing key:    {'created' if report.key_created else 'exists (kept)'}")
    echo(f"verifier key:   {report.verifier_key}")
    if admin is not None:
        echo(f"administrator:  {admin.name} ({admin.fingerprint}), enrolled at event {admin.enrolled_seq}")
        echo(f"roles:          recorded at event {roles_seq} ('custody actor roles show')")
    else:
        echo("administrator:  none enrolled; events are unsigned (station mode)")
    if report.backup_key:
        echo(f"backup key:     {report.backup_key}")
        echo(
            f"move {report.home / 'backup.key'} to offline storage now: it rotates the signing key if that "
            "is ever lost ('custody ledger rotate-key --with-backup FILE')",
            err=True,
        )


COMMANDS = [init]

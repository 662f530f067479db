from __future__ import annotations

from pathlib import Path

import click

from cli.context import emit_json, workspace
from cli.options import json_option
from cli.render import echo


def _escape(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


@click.group("actor")
def actor() -> None:
    """Enrolled people: their names, roles and SSH keys.

    An administrator (acting with their own enrolled key) enrolls and revokes people. Each event
    an enrolled person causes is signed with their key (ssh-keygen's SSHSIG format, namespace
    custody-event); 'custody ledger verify' checks every signature, enrollment and role, by the
    roles recorded in the ledger when each event was made ('custody actor roles').

    \b
    Examples:
      custody --key ~/.ssh/admin_ed25519 actor enroll tech-0412 --role technician --key-file tech-0412.pub
      custody actor list --json
      custody actor allowed-signers > allowed_signers
      custody actor roles show
      custody actor pubkey --key 'pkcs11:token=T;object=LABEL?module-path=LIB&pin-source=file:PIN' > me.pub
    """


@actor.command("enroll")
@click.argument("name")
@click.option("--role", required=True, metavar="ROLE",
              help="What the person may do: technician, supervisor, auditor, admin, or a role the agency adds "
                   "in config.toml ([actors.roles.NAME]); an unknown role is refused (exit 2).")
@click.option("--key", "key_text", help="The person's OpenSSH ed25519 public key ('ssh-ed25519 AAAA...').")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="A .pub file holding it.")
@json_option("Print the enrollment as JSON.")
@click.pass_context
def enroll(ctx: click.Context, name: str, role: str, key_text: str | None, key_file: Path | None, as_json: bool) -> None:
    """Enroll NAME with a role and an SSH public key (records 'actor-enrolled').

    Only an administrator may enroll: run it with your own key (global --key or CUSTODY_KEY).

    \b
    Examples:
      custody --key ~/.ssh/admin_ed25519 actor enroll tech-0412 --role technician --key "$(cat tech-0412.pub)"
      custody actor enroll sup-17 --role supervisor --key-file sup-17.pub --json
    """
    from custody.actors.enrollment import enroll as enroll_person, parse_key
    from custody.ledger.signatures import read_public_key

    if key_text is not None and key_file is None:
        key = parse_key(key_text, "--key")
    elif key_file is not None and key_text is None:
        key = read_public_key(key_file)
    else:
        raise click.UsageError("give the public key with --key 'ssh-ed25519 AAAA...' or --key-file FILE.pub")
    person = enroll_person(workspace(ctx), name, role, key)
    if as_json:
        emit_json(person.as_dict())
    else:
        echo(f"enrolled {person.name} as {person.role} with key {person.fingerprint} (event {person.enrolled_seq})")


@actor.command("pubkey")
@click.option("--key", "key_ref", metavar="KEY",
              help="The key: a private key file, a .pub, or a PKCS#11 URI of a key in an HSM "
                   "('pkcs11:token=T;object=LABEL?module-path=LIB&pin-source=file:PINFILE'); "
                   "default: the global --key (CUSTODY_KEY).")
@click.option("--generate", is_flag=True,
              help="PKCS#11 only: generate the Ed25519 key pair in the token under that label if there is "
                   "none (the private key sensitive and never extractable).")
@json_option("Print the key line and its fingerprint as JSON.")
@click.pass_context
def pubkey(ctx: click.Context, key_ref: str | None, generate: bool, as_json: bool) -> None:
    """Print a key's OpenSSH public key line, to hand to an administrator for 'actor enroll'.

    For a key in an HSM token this is the only way its public half leaves the token in the
    form enrollment takes; the private key never does.

    \b
    Examples:
      custody actor pubkey --generate --key 'pkcs11:token=admin;object=admin-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/root/pin' > admin-1.pub
      custody --key ~/.ssh/id_ed25519 actor pubkey --json
    """
    from custody.ledger.signatures import Pkcs11SshSigner, is_token_key, key_of

    given = key_ref or ctx.find_root().obj.get("key")
    if given is None:
        raise click.UsageError("give the key with --key (a key file or a pkcs11: URI), or the global --key / CUSTODY_KEY")
    text = str(given)
    if generate and not is_token_key(text):
        raise click.UsageError("--generate makes a key in a PKCS#11 token only: give --key 'pkcs11:...'")
    key = Pkcs11SshSigner.load("", text, create=True).public_key if generate else key_of(
        text if is_token_key(text) else Path(text).expanduser())
    if as_json:
        emit_json({"key": key.line, "fingerprint": key.fingerprint})
    else:
        click.echo(key.line)


@actor.command("revoke")
@click.argument("name")
@click.option("--reason", required=True, help="Why (lost key, left the agency, ...).")
@json_option("Print the revoked enrollment as JSON.")
@click.pass_context
def revoke(ctx: click.Context, name: str, reason: str, as_json: bool) -> None:
    """Revoke NAME's enrollment (records 'actor-revoked'); their key never counts again.

    \b
    Examples:
      CUSTODY_KEY=~/.ssh/admin_ed25519 custody actor revoke tech-0412 --reason "key lost"
    """
    from custody.actors.enrollment import revoke as revoke_person

    person = revoke_person(workspace(ctx), name, reason)
    if as_json:
        emit_json(person.as_dict())
    else:
        echo(f"revoked {person.name} ({person.fingerprint}) at event {person.revoked_seq}")


@actor.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked enrollments.")
@json_option()
@click.pass_context
def list_(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List enrolled people (active ones; --all adds revoked enrollments).

    \b
    Examples:
      custody actor list
      custody actor list --all --json
    """
    from custody.actors.roster import current_roster

    roster = current_roster(workspace(ctx).ledger)
    people = roster.people if show_all else roster.active()
    if as_json:
        emit_json([p.as_dict() for p in people])
        return
    for person in people:
        state = "active" if person.active else f"revoked at event {person.revoked_seq}"
        echo(f"{_escape(person.name):<24} {person.role:<11} {person.fingerprint}  {state}")
    if not people:
        echo("nobody is enrolled: events are unsigned (station mode)", err=True)


@actor.command("allowed-signers")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@click.pass_context
def allowed_signers(ctx: click.Context, show_all: bool) -> None:
    """Print an OpenSSH allowed_signers file of the enrolled people's keys.

    With it, anyone can check an event's signature with ssh-keygen alone.

    \b
    Examples:
      custody actor allowed-signers > allowed_signers
      custody actor signature 17 --bytes event.bytes > event.sig
      ssh-keygen -Y verify -f allowed_signers -I tech-0412 -n custody-event -s event.sig < event.bytes
    """
    from custody.actors.enrollment import allowed_signers as render
    from custody.actors.roster import current_roster

    roster = current_roster(workspace(ctx).ledger)
    click.echo(render(roster.people if show_all else roster.active()), nl=False)


@actor.command("signature")
@click.argument("seq", type=int)
@click.option("--bytes", "bytes_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the event's canonical bytes (what was signed) to this file.")
@json_option()
@click.pass_context
def signature(ctx: click.Context, seq: int, bytes_path: Path | None, as_json: bool) -> None:
    """Print event SEQ's SSH signature (armored), as stored beside the event.

    Exits 3 if the event is unsigned.

    \b
    Examples:
      custody actor signature 17 --bytes event.bytes > event.sig
    """
    from custody.errors import Finding, FindingKind, IntegrityFailure
    from custody.ledger.signatures import stored_signatures

    ws = workspace(ctx)
    event = next(ws.ledger.events(start=seq, batch=1), None)
    if event is None or event.seq != seq:
        raise click.BadParameter(f"event {seq} does not exist", param_hint="SEQ")
    stored = next(stored_signatures(ws.ledger, start=seq, batch=1), None)
    if stored is None or stored.seq != seq:
        raise IntegrityFailure([Finding(FindingKind.UNSIGNED, f"event {seq}", "was not signed by an enrolled person")])
    if bytes_path is not None:
        bytes_path.write_bytes(event.canonical())
    if as_json:
        emit_json({"seq": seq, "signer": stored.signer, "key_fingerprint": stored.key_fingerprint,
                   "signature": stored.signature, "bytes": event.canonical().decode("utf-8")})
    else:
        click.echo(stored.signature, nl=False)


@actor.group("roles")
def roles() -> None:
    """The roles recorded in the ledger: which actions each role may record, who may approve what.

    Events are judged by the roles in force when they were made: the last 'roles-set' event
    before them. Events made before a ledger's first 'roles-set' are judged by the roles that
    event records as 'before' (or, until there is one, by config.toml's, as custody did before
    roles were recorded). Otherwise config.toml's [actors.roles.NAME] and [actors.approvals]
    apply only once an administrator records them with 'custody actor roles set'.

    \b
    Examples:
      custody actor roles show
      custody --key ~/.ssh/admin_ed25519 actor roles set
    """


@roles.command("show")
@json_option()
@click.pass_context
def roles_show(ctx: click.Context, as_json: bool) -> None:
    """Print the roles in force in the ledger, and say whether config.toml's differ.

    \b
    Examples:
      custody actor roles show
      custody actor roles show --json
    """
    from custody.actors.roles_log import config_difference, roles_in_force

    ws = workspace(ctx)
    in_force = roles_in_force(ws.ledger, ws.settings.config)
    difference = config_difference(ws.settings.config, in_force)
    if as_json:
        emit_json({**in_force.as_dict(), "config_differs": difference is not None, "config_note": difference})
        return
    echo(f"roles in force: {in_force.source}, sha256 {in_force.policy.digest()}")
    for name, actions in in_force.policy.as_dict()["roles"].items():
        echo(f"  {_escape(name)}: {', '.join(map(_escape, actions))}")
    for kind, names in in_force.policy.as_dict()["approvals"].items():
        echo(f"  approves {_escape(kind)}: {', '.join(map(_escape, names))}")
    if difference is not None:
        echo(f"custody: {difference}", err=True)


@roles.command("set")
@json_option("Print what was recorded (or that nothing changed) as JSON.")
@click.pass_context
def roles_set(ctx: click.Context, as_json: bool) -> None:
    """Record config.toml's roles in the ledger (a 'roles-set' event), if they differ.

    Only an administrator may: run it with your own key (global --key or CUSTODY_KEY). The roles
    are the shipped ones overridden by config.toml's [actors.roles.NAME] and [actors.approvals];
    they apply to events from then on. Says "unchanged" and records nothing when they are
    already the roles in force.

    \b
    Examples:
      custody --key ~/.ssh/admin_ed25519 actor roles set
      CUSTODY_KEY=~/.ssh/admin_ed25519 custody actor roles set --json
    """
    from custody.actors.identity import require_allowed
    from custody.actors.roles import ROLES_SET, load_roles
    from custody.actors.roles_log import record_roles

    ws = workspace(ctx)
    policy = load_roles(ws.settings.config)
    require_allowed(ws, ROLES_SET)
    change = record_roles(ws, policy)
    if as_json:
        emit_json(change.as_dict())
    elif change.recorded:
        echo(f"recorded the roles as event {change.in_force.seq} (sha256 {change.in_force.policy.digest()}); "
             f"they apply from now on, earlier events keep {change.previous.source}")
    else:
        echo(f"unchanged: config.toml's roles are already in force ({change.in_force.source}); nothing recorded")


COMMANDS = [actor]

from __future__ import annotations

from pathlib import Path

import click

from cli.context import emit_json
from cli.options import json_option
from cli.render import echo


def _directory(ctx: click.Context, path: Path | None) -> Path:
    if path is not None:
        return path.expanduser().resolve()
    return Path(ctx.find_root().obj["home"]) / "witness"


dir_option = click.option(
    "--dir",
    "path",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CUSTODY_WITNESS_DIR",
    help="The witness's directory (env CUSTODY_WITNESS_DIR; default <data directory>/witness).",
)


@click.group("witness")
def witness() -> None:
    """Run a C2SP tlog-witness that cosigns other parties' logs (custody ledgers or any log).

    A witness is run by someone other than the log's operator (a prosecutor's office, a
    civil-rights organisation). It keeps, per log, the latest checkpoint it cosigned, and
    cosigns a new one only with a valid consistency proof from it: a log that was rolled back
    or forked is refused.

    \b
    Examples:
      custody witness init witness.example.org/w1
      custody witness add-log "$(cat city-ledger.vkey)"
      custody witness serve --listen 127.0.0.1:7380
    """


@witness.command("init")
@click.argument("name")
@dir_option
@json_option("Print the result as JSON.")
@click.pass_context
def init(ctx: click.Context, name: str, path: Path | None, as_json: bool) -> None:
    """Create the witness directory and its Ed25519 cosigner key NAME (mode 0600).

    NAME should be a schema-less URL naming the witness. Prints the verifier key (C2SP vkey,
    type 0x04) that logs put in their [[anchors.witnesses]] configuration. An existing key is
    never replaced.

    \b
    Examples:
      custody witness init witness.example.org/w1
      custody witness init witness.example.org/w1 --dir /var/lib/custody-witness
    """
    from custody.anchors.witness import WitnessDirectory

    directory = WitnessDirectory(_directory(ctx, path))
    vkey, created = directory.init(name)
    if as_json:
        emit_json({"directory": str(directory.path), "verifier_key": vkey, "created": created})
        return
    if not created:
        echo(f"witness key already exists in {directory.path} (kept)", err=True)
    echo(vkey)


@witness.command("add-log")
@click.argument("vkey")
@dir_option
@click.pass_context
def add_log(ctx: click.Context, vkey: str, path: Path | None) -> None:
    """Trust the log whose checkpoint verifier key is VKEY (its name is the log's origin).

    A restart of 'witness serve' picks up the change. After the log rotates its key, add the
    new key too.

    \b
    Examples:
      custody witness add-log "$(custody --home /srv/city ledger key)"
    """
    from custody.anchors.witness import WitnessDirectory

    directory = WitnessDirectory(_directory(ctx, path))
    added = directory.add_log(vkey)
    echo("added" if added else "already trusted", err=True)


@witness.command("key")
@dir_option
@click.pass_context
def key(ctx: click.Context, path: Path | None) -> None:
    """Print the witness's verifier key.

    \b
    Examples:
      custody witness key > witness.vkey
    """
    from custody.anchors.witness import WitnessDirectory

    echo(WitnessDirectory(_directory(ctx, path)).cosigner().verifier.to_text())


@witness.command("serve")
@click.option("--listen", default="127.0.0.1:7380", show_default=True, help="HOST:PORT to listen on.")
@dir_option
@click.option("--quiet", is_flag=True, help="Do not log each request to stderr.")
@click.pass_context
def serve(ctx: click.Context, listen: str, path: Path | None, quiet: bool) -> None:
    """Answer C2SP tlog-witness add-checkpoint requests (POST <prefix>/add-checkpoint).

    Stops on SIGTERM or Ctrl-C. The state (latest cosigned checkpoint of each log) is written
    atomically before every answer; see infra/witness/ for a systemd unit.

    \b
    Examples:
      custody witness serve --listen 127.0.0.1:7380
      custody witness serve --dir /var/lib/custody-witness --listen [::1]:7380
    """
    import signal

    from custody.anchors.witness import WitnessDirectory, make_server

    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit():
        raise click.BadParameter("use HOST:PORT", param_hint="--listen")
    host = host.strip("[]")
    directory = WitnessDirectory(_directory(ctx, path))
    try:
        server = make_server(directory, host, int(port_text), quiet=quiet)
    except OSError as exc:
        from custody.errors import ConfigError

        raise ConfigError(f"cannot listen on {listen}: {exc.strerror}") from exc
    logs = ", ".join(sorted(server.witness.logs)) or "none (use 'custody witness add-log')"
    echo(f"witness {server.witness.cosigner.name} listening on {listen}; logs: {logs}", err=True)

    def _stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS = [witness]

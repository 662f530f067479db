"""The ``custody`` command group, global options, and the one place errors become exit codes.

Exit codes: 0 ok; 1 internal error; 2 usage or bad input; 3 integrity finding; 4 refused by
policy or lock; 5 store, database, configuration or tool unavailable; 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import IO, Any

import click

import cli.commands as command_modules
from cli.config import load_config

EXIT_CODES = """\b
Exit codes:
  0  ok                      3  integrity finding (mismatch, missing, tampered)
  1  internal error          4  refused by retention, hold or policy
  2  usage or bad input      5  store, database, configuration unavailable
  130 interrupted"""


class CommandFailed(click.ClickException):
    """A custody or storage error on its way to the terminal, with its own exit code. click
    declares ``exit_code`` per class, so each code has its subclass: make one with ``failed``."""

    def show(self, file: IO[Any] | None = None) -> None:
        from cli.render import printable
        from custody.settings import mask_secrets

        message = mask_secrets(printable(self.format_message(), keep_newlines=True))
        click.echo(f"custody: error: {message}", err=True)


_FAILED: dict[int, type[CommandFailed]] = {}


def failed(message: str, code: int) -> CommandFailed:
    """The ``CommandFailed`` that prints ``message`` and ends the process with ``code``."""
    kind = _FAILED.get(code)
    if kind is None:

        class Failed(CommandFailed):
            exit_code = code

        kind = _FAILED[code] = Failed
    return kind(message)


class CustodyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from custody.errors import CustodyError
        from storage.errors import StorageError

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("custody: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # the reader went away (custody log | head): stop quietly, as a writer killed by
            # SIGPIPE would, and keep the final flush from failing again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            ctx.exit(141)
        except (CustodyError, StorageError) as exc:
            if exc.exit_code == 4 and ctx.obj and ctx.obj.get("workspace") is not None:
                _record_refusal(ctx, exc)
            if getattr(exc, "shown", False):  # the command rendered it: only the code is left
                ctx.exit(exc.exit_code)
            if ctx.obj and ctx.obj.get("debug"):
                import traceback

                traceback.print_exc()
            raise failed(str(exc), exc.exit_code) from exc
        except Exception as exc:  # the one place an unexpected error becomes exit 1
            if ctx.obj and ctx.obj.get("debug"):
                import traceback

                traceback.print_exc()
            raise failed(
                f"internal error: {type(exc).__name__}: {exc} (run again with --debug for a traceback)", 1
            ) from exc


def _record_refusal(ctx: click.Context, exc: Exception) -> None:
    """Record a command refused by role, enrollment, the two-person rule, a lock, retention or
    policy as a ``refused`` event (best effort: the refusal is reported either way). One the
    core recorded already (inside a batch) is not recorded again."""
    from custody.refusals import record_error

    try:
        event = record_error(ctx.obj["workspace"], exc)
    except Exception as error:  # a refusal must still be reported when recording it fails
        click.echo(f"custody: warning: the refusal could not be recorded in the ledger: {error}", err=True)
        return
    if event is not None:
        click.echo(f"custody: refusal recorded as event {event.seq}", err=True)


@click.group(cls=CustodyGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CUSTODY_HOME",
    help="Data directory (env CUSTODY_HOME; default ~/.local/share/custody).",
)
@click.option("--db", "db_url", envvar="CUSTODY_DB", help="Ledger database URL (env CUSTODY_DB).")
@click.option("--store", "store_url", envvar="CUSTODY_STORE", help="Object store URL (env CUSTODY_STORE).")
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CUSTODY_KEY",
    help="Your enrolled SSH key: a private key file, the .pub of a key in ssh-agent or on a "
    "token, or a PKCS#11 URI of an Ed25519 key in an HSM ('pkcs11:token=T;object=LABEL?module-path=LIB"
    "&pin-source=file:PINFILE') (env CUSTODY_KEY). Events you cause are signed with it.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(package_name="custody", prog_name="custody")
@click.pass_context
def cli(
    ctx: click.Context, home: Path | None, db_url: str | None, store_url: str | None, key: Path | None, debug: bool
) -> None:
    """Preserve body-camera footage and keep its chain of custody.

    Files are hashed (BLAKE3 and SHA-256), stored under retention locks, and every action is
    appended to a hash-chained custody ledger that anyone can verify.

    \b
    Examples:
      custody init
      custody ingest /media/dock/export/ --note "Dock 3 nightly export"
      custody verify 1f0c3a9e
      custody log --json
    """
    from custody.settings import default_home

    _route_core_logs()
    home = (home or default_home()).expanduser().resolve()
    config = load_config(home / "config.toml")
    ctx.ensure_object(dict)
    ctx.obj.update(
        home=home,
        db_url=db_url or config.get("db"),
        store_url=store_url or config.get("store"),
        config=config,
        debug=debug,
        key=key,
    )
    ctx.default_map = {**config.get("commands", {}), **(ctx.default_map or {})}


class _StderrHandler(logging.Handler):
    """Warnings the core logs (``custody.*`` loggers, e.g. a witness that is down) go to stderr,
    with control characters escaped."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        click.echo("".join(c if c == "\n" or c.isprintable() else repr(c)[1:-1] for c in message), err=True)


def _route_core_logs() -> None:
    logger = logging.getLogger("custody")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler(logging.WARNING))
        logger.propagate = False


def _register() -> None:
    """Add every command module's ``COMMANDS`` (modules in cli/commands, in name order)."""
    import importlib
    import pkgutil

    for module_info in sorted(pkgutil.iter_modules(command_modules.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"cli.commands.{module_info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point. SIGTERM is handled as Ctrl-C is (``KeyboardInterrupt``):
    what the command was writing is cleaned up, and it exits 130."""
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        cli.main(prog_name="custody")
        code: str | int | None = 0
    except SystemExit as exit_:
        code = exit_.code
    except KeyboardInterrupt:
        click.echo("custody: interrupted", err=True)
        code = 130
    _leave(code)


def _leave(code: str | int | None) -> None:
    """End the process without the interpreter's module-by-module teardown, which costs a tenth
    of a second or more once SQLAlchemy is loaded. Nothing is lost by it: every command has
    closed its files and committed its database transactions before it returns, and the two
    output streams are flushed here, and staging files the store still holds (an interrupt
    caught between two steps of an ingest) are removed."""
    staging = sys.modules.get("storage.staging")
    if staging is not None:
        staging.discard_held()
    if isinstance(code, str):
        click.echo(code, err=True)
        code = 1
    elif code is None:
        code = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            if stream is sys.stdout and code == 0:
                code = 1
    os._exit(int(code) if isinstance(code, int) else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

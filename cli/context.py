"""Build the core's settings from the parsed global options, environment and config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from custody.settings import Settings

if TYPE_CHECKING:
    from custody.home import Workspace


def os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def _db_timeout(config: dict[str, Any]) -> float:
    from custody.errors import BadInput

    given = os.environ.get("CUSTODY_DB_TIMEOUT")
    if given is None:
        return float(config.get("db_timeout", 30))
    try:
        value = float(given)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise BadInput(f"CUSTODY_DB_TIMEOUT={given!r}: give a number of seconds from 0 to 86400")
    return value


def settings_from(ctx: click.Context, actor: str | None = None) -> Settings:
    obj: dict[str, Any] = ctx.find_root().obj
    home = obj["home"]
    config = obj["config"]
    from cli.render import refuse_control_characters

    timeout = _db_timeout(config)
    key = obj.get("key") or config.get("key")
    name = actor or os.environ.get("CUSTODY_ACTOR") or config.get("actor") or os_user()
    role = config.get("role", "technician")
    refuse_control_characters("the actor", name)
    refuse_control_characters("the role", role)
    return Settings(
        home=home,
        db_url=obj["db_url"] or Settings.default_db_url(home),
        store_url=obj["store_url"] or Settings.default_store_url(home),
        actor=name,
        role=role,
        db_timeout=timeout,
        config=config,
        key=Path(key).expanduser() if key else None,
        command=" ".join(["custody", *ctx.command_path.split()[1:]]),
    )



def workspace(ctx: click.Context, actor: str | None = None, *, ledger_in_background: bool = False) -> Workspace:
    """The command's workspace, acting as the person whose enrolled key was given (--key,
    CUSTODY_KEY, ``key`` in config.toml), or as an unsigned station without one. Kept on the
    context so that a refusal can be recorded (cli.main)."""
    from custody.actors.identity import act_as, unsigned_station
    from custody.home import open_workspace

    settings = settings_from(ctx, actor)
    root = ctx.find_root().obj
    if settings.key is None:
        ws = open_workspace(settings, ledger_hooks=(unsigned_station(settings.config),), ledger_in_background=ledger_in_background)
        root["workspace"] = ws
    else:
        ws = open_workspace(settings)
        root["workspace"] = ws  # a key refused (not enrolled, revoked) is recorded too
        act_as(ws, settings.key)
    return ws


def emit_json(value: Any) -> None:
    import json

    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


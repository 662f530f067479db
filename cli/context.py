"""Build the core's settings from the parsed global options, environment and config."""

from __future__ import annotations

import os
from typing import Any

import click

from custody.settings import Settings


def os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def settings_from(ctx: click.Context, actor: str | None = None) -> Settings:
    obj: dict[str, Any] = ctx.find_root().obj
    home = obj["home"]
    config = obj["config"]
    timeout = float(os.environ.get("CUSTODY_DB_TIMEOUT", config.get("db_timeout", 30)))
    return Settings(
        home=home,
        db_url=obj["db_url"] or Settings.default_db_url(home),
        store_url=obj["store_url"] or Settings.default_store_url(home),
        actor=actor or os.environ.get("CUSTODY_ACTOR") or config.get("actor") or os_user(),
        role=config.get("role", "technician"),
        db_timeout=timeout,
        config=config,
    )



def workspace(ctx: click.Context, actor: str | None = None, *, ledger_in_background: bool = False) -> Any:
    from custody.home import open_workspace

    return open_workspace(settings_from(ctx, actor), ledger_in_background=ledger_in_background)


def emit_json(value: Any) -> None:
    import json

    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))

"""Options that many commands take, declared once.

``json_option`` adds ``--json`` (the parameter ``as_json``): data for machines on stdout, with
stable keys. ``actor_option`` adds ``--actor`` (the parameter ``actor``), read from the
environment variable ``CUSTODY_ACTOR`` when not given; without either, the actor comes from
config.toml or is the OS user (``cli.context.settings_from``).

\b
Example:
    @click.command("show")
    @actor_option("Who looks")
    @json_option("Print the record as JSON.")
    def show(actor: str | None, as_json: bool) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])

ACTOR_ENV = "CUSTODY_ACTOR"


def json_option(help: str = "Print as JSON.") -> Callable[[F], F]:
    """``--json``: print the command's result as JSON instead of lines for people."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def actor_option(who: str, *, mentions_default: bool = False) -> Callable[[F], F]:
    """``--actor NAME`` (env ``CUSTODY_ACTOR``): who causes the events the command records.

    ``who`` starts the help text ("Who exports"); the environment variable is named after it,
    and, with ``mentions_default``, that the OS user is the default."""
    source = f"env {ACTOR_ENV}; default the OS user" if mentions_default else f"env {ACTOR_ENV}"
    return click.option("--actor", envvar=ACTOR_ENV, help=f"{who} ({source}).")

"""--json and --actor are declared once (cli/options.py) and behave the same on every command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from cli.main import cli
from tests.conftest import Custody

COMMANDS_DIR = Path(__file__).resolve().parents[2] / "cli" / "commands"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


def _option(command: click.Command, flag: str) -> click.Option | None:
    return next((p for p in command.params if isinstance(p, click.Option) and flag in p.opts), None)


def test_no_command_module_declares_json_or_actor_itself() -> None:
    declared = re.compile(r"""click\.option\(\s*["']--(json|actor)["']""")
    offenders = [path.name for path in COMMANDS_DIR.glob("*.py") if declared.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_every_json_and_actor_option_is_the_shared_one() -> None:
    with_json = with_actor = 0
    for path, command in _commands(cli):
        as_json = _option(command, "--json")
        if as_json is not None:
            with_json += 1
            assert as_json.name == "as_json" and as_json.is_flag, path
            assert as_json.help and "JSON" in as_json.help, path
        actor = _option(command, "--actor")
        if actor is not None:
            with_actor += 1
            assert actor.name == "actor" and actor.envvar == "CUSTODY_ACTOR", path
            assert actor.help and actor.help.startswith("Who ") and "(env CUSTODY_ACTOR" in actor.help, path
    assert with_json >= 29 and with_actor >= 17


def _recorded_actor(custody: Custody, incident: str) -> str:
    log = json.loads(custody("log", "--json").stdout)
    created = [e for e in log if e["action"] == "incident-created" and e["subject"].get("incident") == incident]
    assert len(created) == 1, log
    return str(created[0]["actor"])


def test_actor_comes_from_the_flag_then_the_environment(initialized: Custody) -> None:
    by_env = initialized("incident", "create", "I-ENV", "--occurred-at", "2026-11-01T14:03:00-06:00",
                         env={"CUSTODY_ACTOR": "sgt-env"})
    assert by_env.exit_code == 0, by_env.output
    by_flag = initialized("incident", "create", "I-FLAG", "--occurred-at", "2026-11-01T14:03:00-06:00",
                          "--actor", "sgt-flag", env={"CUSTODY_ACTOR": "sgt-env"})
    assert by_flag.exit_code == 0, by_flag.output
    assert _recorded_actor(initialized, "I-ENV") == "sgt-env"
    assert _recorded_actor(initialized, "I-FLAG") == "sgt-flag"


def test_json_flag_switches_the_output_to_json(initialized: Custody) -> None:
    text = initialized("incident", "create", "I-TEXT", "--occurred-at", "2026-11-01T14:03:00-06:00")
    assert text.exit_code == 0, text.output
    as_json = initialized("incident", "create", "I-JSON", "--occurred-at", "2026-11-01T14:03:00-06:00", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["incident"] == "I-JSON"
    try:
        json.loads(text.stdout)
    except json.JSONDecodeError:
        pass
    else:
        raise AssertionError(f"the output without --json is JSON: {text.stdout!r}")

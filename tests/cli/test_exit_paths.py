"""One way to end a command with a code: render, then raise the project's error; the command
line's one handler (cli/main.py) sets the code, and prints nothing more for an error the command
has already shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from cli.main import cli
from custody.errors import BadInput, IntegrityFailure
from tests.conftest import Custody

CLI_DIR = Path(__file__).resolve().parents[2] / "cli"

LITERAL_EXIT = re.compile(r"\b(sys\.exit|ctx\.exit|\.exit|os\._exit)\(\s*\d|SystemExit\(\s*\d|exceptions\.Exit\(\s*\d|\bExit\(\s*\d")


def test_no_command_ends_with_a_literal_exit_code() -> None:
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((CLI_DIR / "commands").glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if LITERAL_EXIT.search(line)
    ]
    assert offenders == []


@click.command("fails-shown")
@click.option("--kind", type=click.Choice(["integrity", "input", "unshown"]))
def _fails(kind: str) -> None:
    click.echo("the command's own report")
    if kind == "integrity":
        raise IntegrityFailure([]).already_shown()
    if kind == "input":
        raise BadInput("two files unreadable").already_shown()
    raise BadInput("the reference is no good")


@pytest.fixture
def with_failing_command() -> object:
    cli.add_command(_fails)
    yield
    cli.commands.pop("fails-shown")


@pytest.mark.usefixtures("with_failing_command")
@pytest.mark.parametrize(("kind", "code"), [("integrity", 3), ("input", 2)])
def test_an_error_already_shown_sets_the_code_and_prints_nothing_more(custody: Custody, kind: str, code: int) -> None:
    result = custody("fails-shown", "--kind", kind)
    assert result.exit_code == code
    assert result.stdout == "the command's own report\n"
    assert result.stderr == ""


@pytest.mark.usefixtures("with_failing_command")
def test_an_error_not_shown_is_printed_once_by_the_handler(custody: Custody) -> None:
    result = custody("fails-shown", "--kind", "unshown")
    assert result.exit_code == 2
    assert result.stderr == "custody: error: the reference is no good\n"


def test_hash_of_an_unreadable_file_exits_2_naming_it_once(custody: Custody, tmp_path: Path) -> None:
    good = tmp_path / "good.bin"
    good.write_bytes(b"evidence")
    result = custody("hash", str(good), str(tmp_path / "absent.bin"))
    assert result.exit_code == 2
    assert result.stdout.endswith(f"  {good}\n")
    assert result.stderr.count("absent.bin") == 1
    assert "custody: error:" not in result.stderr


def test_verify_of_unpreserved_bytes_exits_3_and_of_only_bad_references_exits_2(initialized: Custody, tmp_path: Path) -> None:
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"body camera bytes" * 100)
    ingested = initialized.json("ingest", str(clip))
    assert ingested[0]["status"] == "recorded", ingested
    bad = initialized("verify", "0000000000ffff", "--json")
    assert bad.exit_code == 2
    assert json.loads(bad.stdout)[0]["findings"][0]["kind"] == "bad-reference"
    assert "custody: error:" not in bad.stderr
    clip.write_bytes(b"other bytes")
    not_preserved = initialized("verify", str(clip), "--json")
    assert not_preserved.exit_code == 3
    assert json.loads(not_preserved.stdout)[0]["ok"] is False
    assert "custody: error:" not in not_preserved.stderr

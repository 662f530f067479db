"""A malformed configuration file is exit 5 naming the file and the fault; an out-of-range
number option is a usage error (exit 2); neither is ever an internal error (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Custody


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'db = "sqlite:///x.db"\n[commands\n', "is not valid TOML"),
        (b"store = 5\n", "'store' must be a quoted string, not a number"),
        (b"db = 12\n", "'db' must be a quoted string, not a number"),
        (b'actor = ["a", "b"]\n', "'actor' must be a quoted string, not an array"),
        (b'commands = "ingest"\n', "'commands' must be a table"),
        (b'[commands]\ningest = 3\n', "'commands.ingest' must be a table"),
        (b'db_timeout = "soon"\n', "'db_timeout' must be a number of seconds"),
        (b'actor = "caf\xe9"\n', "is not UTF-8 text"),
    ],
)
def test_malformed_config_is_exit_5_naming_the_file(initialized: Custody, content: bytes, says: str) -> None:
    config = initialized.home / "config.toml"
    config.write_bytes(content)
    for args in (["log"], ["hash", "/proc/version"], ["init"]):
        result = initialized(*args)
        assert result.exit_code == 5, (args, result.output)
        assert f"custody: error: the configuration file {config}" in result.stderr
        assert says in result.stderr
        assert "internal error" not in result.stderr


def test_config_that_is_a_directory_is_exit_5(initialized: Custody) -> None:
    (initialized.home / "config.toml").mkdir()
    result = initialized("log")
    assert result.exit_code == 5
    assert f"the configuration file {initialized.home / 'config.toml'} is a directory" in result.stderr


def test_bad_db_timeout_from_the_environment_is_a_usage_error(initialized: Custody) -> None:
    result = initialized("log", env={"CUSTODY_DB_TIMEOUT": "forever"})
    assert result.exit_code == 2
    assert "CUSTODY_DB_TIMEOUT='forever'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "--rotation", "99999999999999999999999"],
        ["audit", "--rotation", "0"],
        ["audit", "--shard", "5/99999999999999999999999"],
        ["audit", "--workers", "0"],
        ["ledger", "prove", "deadbeef", "--event", "-1"],
        ["ledger", "prove", "deadbeef", "--event", "99999999999999999999999"],
        ["incident", "create", "2026-1101-ICE-01", "--detentions", "99999999999999999999999"],
        ["media", "sheet", "deadbeef", "--tiles", "100000"],
    ],
)
def test_out_of_range_numbers_are_usage_errors(initialized: Custody, args: list[str]) -> None:
    result = initialized(*args)
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.stderr
    assert "Invalid value" in result.stderr
    events = initialized.json("log")
    assert events == []

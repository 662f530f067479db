"""Text from outside never reaches the terminal raw: file names, notes, actors, tags read from
videos and incident fields are printed with their control characters escaped, so an escape
sequence cannot clear the screen or retitle the terminal, and a line break cannot forge a log
line; --json keeps the exact values; actors and roles with control characters are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custody.ledger.database import Ledger
from tests.conftest import Custody, make_clip

CLEAR = "\x1b[2J"
TITLE = "\x1b]0;owned\x07"
FORGED = "\n#999   2026-11-02T03:00:00Z  chief      disposed   evidence=all"
HOSTILE = [CLEAR, TITLE, "\r", FORGED, "\u202e", "\x9b31m"]


def assert_safe(text: str, *, lines: int | None = None) -> None:
    """No control character but the line breaks the tool wrote; no forged log line."""
    for char in text:
        assert char == "\n" or (ord(char) >= 0x20 and not 0x7F <= ord(char) <= 0x9F and char != "\u202e"), repr(char)
    assert not any(line.startswith("#999") for line in text.splitlines())
    if lines is not None:
        assert len(text.splitlines()) == lines, text


@pytest.mark.parametrize("bad", HOSTILE)
def test_actors_and_roles_with_control_characters_are_refused(initialized: Custody, tmp_path: Path, bad: str) -> None:
    clip = tmp_path / "a.bin"
    clip.write_bytes(b"x")
    by_flag = initialized("ingest", str(clip), "--actor", f"tech{bad}")
    assert by_flag.exit_code == 2, by_flag.output
    assert "contains control characters" in by_flag.stderr
    assert_safe(by_flag.stderr)
    by_env = initialized("ingest", str(clip), env={"CUSTODY_ACTOR": f"tech{bad}"})
    assert by_env.exit_code == 2
    (initialized.home / "config.toml").write_text(f"role = {json.dumps('clerk' + bad)}\n")
    by_role = initialized("ingest", str(clip))
    assert by_role.exit_code == 2 and "the role" in by_role.stderr
    (initialized.home / "config.toml").unlink()
    assert initialized.json("log") == []


def test_hostile_file_names_and_notes_are_escaped_everywhere_but_json(initialized: Custody, tmp_path: Path) -> None:
    names = [f"clip{bad}.mp4" for bad in HOSTILE]
    paths = []
    for index, name in enumerate(names):
        path = tmp_path / name
        path.write_bytes(f"footage {index}".encode())
        paths.append(path)
    note = f"dock 3{FORGED}{CLEAR}"
    result = initialized("ingest", *map(str, paths), "--note", note)
    assert result.exit_code == 0, result.output
    assert_safe(result.stdout, lines=len(paths))
    assert_safe(result.stderr)
    assert "clip\\x1b[2J.mp4" in result.stdout and "clip\\x1b]0;owned\\x07.mp4" in result.stdout
    as_json = initialized("ingest", *map(str, paths), "--note", note, "--json")
    assert sorted(r["path"] for r in json.loads(as_json.stdout)) == sorted(map(str, paths))
    log = initialized("log")
    assert log.exit_code == 0
    assert_safe(log.stdout, lines=4 * len(paths))  # an event line and a details line each
    events = initialized.json("log")
    assert {e["details"]["note"] for e in events} == {note}
    assert sorted(e["details"]["source"]["name"] for e in events if e["action"] == "ingested") == sorted(names)
    for path in paths:
        for args in (["show", str(path)], ["verify", str(path)], ["log", str(path)]):
            shown = initialized(*args)
            assert shown.exit_code == 0, shown.output
            assert_safe(shown.stdout + shown.stderr)
    hashed = initialized("hash", *map(str, paths))
    assert_safe(hashed.stdout, lines=len(paths))


def test_an_actor_already_in_the_ledger_is_printed_escaped(initialized: Custody, tmp_path: Path) -> None:
    """A ledger written by an older version, or another tool, may hold any actor."""
    ledger = Ledger(f"sqlite:///{initialized.home / 'custody.db'}")
    ledger.append("noted", actor=f"tech{FORGED}{CLEAR}", role=f"r{TITLE}", subject={"incident": f"I-1{CLEAR}"},
                  details={"note": f"n{FORGED}"})
    log = initialized("log")
    assert_safe(log.stdout, lines=2)
    assert "tech\\n#999" in log.stdout
    [event] = initialized.json("log")
    assert event["actor"] == f"tech{FORGED}{CLEAR}" and event["role"] == f"r{TITLE}"
    failed = initialized("verify", f"nothing{CLEAR}here")
    assert failed.exit_code == 2
    assert_safe(failed.stdout + failed.stderr)


def test_tags_read_from_a_video_are_escaped(initialized: Custody, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "tagged.mp4", serial=f"SN{CLEAR}{TITLE}x")
    result = initialized("ingest", str(clip))
    assert result.exit_code == 0, result.output
    shown = initialized("show", str(clip))
    assert shown.exit_code == 0
    assert_safe(shown.stdout + shown.stderr)
    record = initialized.json("show", str(clip))
    assert record["media"]["device"]["serial"] == f"SN{CLEAR}{TITLE}x"
    assert "SN\\x1b[2J\\x1b]0;owned\\x07x" in shown.stdout


def test_incident_fields_are_escaped_and_kept_exact_in_json(initialized: Custody) -> None:
    refused = initialized("incident", "create", "2026-1101-ICE-01", "--location", f"Main St{TITLE}")
    assert refused.exit_code == 2
    assert_safe(refused.stderr)
    note = f"calm{FORGED}"  # a multi-line note is allowed, and printed on one line
    created = initialized("incident", "create", "2026-1101-ICE-01", "--location", "Main St", "--note", note)
    assert created.exit_code == 0, created.output
    assert_safe(created.stdout + created.stderr)
    assert "calm\\n#999" in created.stdout
    # fields written by another tool, or an older version, with any characters at all
    Ledger(f"sqlite:///{initialized.home / 'custody.db'}").append(
        "incident-created", actor="clerk", role="clerk", subject={"incident": "2026-1101-ICE-02"},
        details={"fields": {"location": f"Elm St{TITLE}", "supervisor_name": f"A{CLEAR}B"}},
    )
    for incident in ("2026-1101-ICE-01", "2026-1101-ICE-02"):
        shown = initialized("incident", "show", incident)
        assert shown.exit_code == 0, shown.output
        assert_safe(shown.stdout + shown.stderr)
    assert initialized.json("incident", "show", "2026-1101-ICE-01")["fields"]["note"] == note
    fields = initialized.json("incident", "show", "2026-1101-ICE-02")["fields"]
    assert fields == {"location": f"Elm St{TITLE}", "supervisor_name": f"A{CLEAR}B"}

"""What each role may do once people are enrolled: every action custody records belongs to some
role (a release is the supervisor's, a new ledger key the administrator's)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_actors import PEOPLE, Office, key_dir, office  # noqa: F401


def _signer(office: Office, seq: int) -> str:
    signer: str = office.custody.json("actor", "signature", str(seq))["signer"]
    return signer


def test_a_supervisor_publishes_a_release_signed_and_others_are_refused(office: Office, tmp_path: Path) -> None:
    for number in range(3):
        made = office.as_("sup-1", "incident", "create", f"P-{number}", "--occurred-at", "2026-03-03T10:00:00-05:00",
                          "--agency", "ICE")
        assert made.exit_code == 0, made.output
    for name in ("tech-1", "aud-1", "admin-1"):
        refused = office.as_(name, "publish", "stats", "--as-of", "latest", "--out", str(tmp_path / name))
        assert refused.exit_code == 4, refused.output
        assert f"{name} ({PEOPLE[name]}) may not record 'published'" in refused.stderr
        assert not (tmp_path / name).exists() and not list(tmp_path.glob(f".{name}.*"))
    out = tmp_path / "release"
    done = office.as_("sup-1", "publish", "stats", "--as-of", "latest", "--out", str(out), "--json")
    assert done.exit_code == 0, done.output
    event = json.loads((out / "published-event.json").read_text())
    assert (event["action"], event["actor"], event["role"]) == ("published", "sup-1", "supervisor")
    assert _signer(office, event["seq"]) == "sup-1"
    code, report = office.verify()
    assert code == 0, report["findings"]
    assert report["actors"]["signers"]["sup-1"] == 4
    checked = office.custody("publish", "verify", str(out), "--json")
    assert checked.exit_code == 0, checked.output


def test_an_administrator_rotates_the_ledger_key_signed_and_others_are_refused(office: Office) -> None:
    for name in ("sup-1", "tech-1", "aud-1"):
        refused = office.as_(name, "ledger", "rotate-key")
        assert refused.exit_code == 4, refused.output
        assert f"{name} ({PEOPLE[name]}) may not record 'key-rotated'" in refused.stderr
    assert not list(office.custody.home.glob("*.next")) and not list(office.custody.home.glob("*.retired-*")), \
        "a refused rotation makes no key"
    rotated = office.json_as("admin-1", "ledger", "rotate-key")
    event = office.custody.json("log")[-1]
    assert (event["seq"], event["action"], event["actor"], event["role"]) == (rotated["seq"], "key-rotated", "admin-1", "admin")
    assert _signer(office, rotated["seq"]) == "admin-1"
    assert office.as_("tech-1", "incident", "create", "R-1", "--location", "x").exit_code == 0
    result = office.custody("ledger", "verify", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["ok"] is True

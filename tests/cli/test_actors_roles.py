"""The roles recorded in the ledger: every event is judged by the roles in force when it was
made (the last roles-set event before it), never by today's config.toml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from custody.actors.roles import load_roles
from custody.ledger.database import Ledger
from custody.ledger.signatures import FileKeySigner
from tests.cli.test_actors import PEOPLE, Office, _file, _ingested, key_dir, make_key, office  # noqa: F401
from tests.conftest import Custody

HOLDING_TECHS = '[actors.roles.technician]\nactions = ["ingested", "hold-placed", "viewed"]\n'
PLAIN_TECHS = '[actors.roles.technician]\nactions = ["ingested", "viewed"]\n'


def _config(office: Office, text: str) -> None:
    (office.custody.home / "config.toml").write_text(text)


def _roles_set(office: Office) -> list[int]:
    return [e["seq"] for e in office.custody.json("log") if e["action"] == "roles-set"]


def _signed_as(office: Office, name: str) -> Ledger:
    """The ledger API directly, signing as ``name`` with a valid signature: what a station that
    skipped the tool's checks could append."""
    ledger = office.ledger()
    ledger.event_signer = FileKeySigner.load(name, office.keys[name])
    return ledger


def _findings(office: Office) -> set[tuple[str, str]]:
    code, report = office.verify()
    assert code == (3 if report["findings"] else 0)
    return {(f["subject"], f["kind"]) for f in report["findings"]}


def test_init_records_the_roles_and_show_says_when_config_differs(custody: Custody, key_dir: dict[str, Path]) -> None:
    custody.home.mkdir(parents=True)
    (custody.home / "config.toml").write_text('[actors.roles.evidence-clerk]\nactions = ["ingested"]\n')
    made = custody.json("init", "--admin", "admin-1", "--admin-key", str(key_dir["admin-1"]))
    assert made["roles_seq"] == 1
    [event] = [e for e in custody.json("log") if e["action"] == "roles-set"]
    assert (event["seq"], event["actor"], event["role"]) == (1, "admin-1", "admin")
    policy = load_roles({"actors": {"roles": {"evidence-clerk": {"actions": ["ingested"]}}}})
    assert event["details"] == {**policy.as_dict(), "sha256": policy.digest()}
    assert "roles-set" in event["details"]["roles"]["admin"]
    shown = custody.json("actor", "roles", "show")
    assert (shown["seq"], shown["sha256"], shown["config_differs"]) == (1, policy.digest(), False)
    assert shown["roles"]["evidence-clerk"] == ["ingested"]
    again = custody.json("init", "--admin", "admin-1", "--admin-key", str(key_dir["admin-1"]))
    assert again["roles_seq"] == 1, "init run again records nothing new"
    (custody.home / "config.toml").write_text("")
    text = custody("actor", "roles", "show")
    assert text.exit_code == 0
    assert "roles in force: the roles-set event 1" in text.stdout and "evidence-clerk: ingested" in text.stdout
    assert "config.toml's roles differ" in text.stderr and "custody actor roles set" in text.stderr
    assert custody.json("actor", "roles", "show")["config_differs"] is True
    assert custody.json("ledger", "verify")["actors"]["roles_set"] == [1]


def test_roles_set_is_for_administrators_and_records_nothing_when_unchanged(office: Office) -> None:
    _config(office, HOLDING_TECHS)
    before = len(office.custody.json("log"))
    sup = office.as_("sup-1", "actor", "roles", "set")
    assert sup.exit_code == 4 and "sup-1 (supervisor) may not record 'roles-set'" in sup.stderr
    unsigned = office.custody("actor", "roles", "set", env={"CUSTODY_ACTOR": "root"})
    assert unsigned.exit_code == 4 and "administrator's key" in unsigned.stderr
    assert _roles_set(office) == [1], "a refused roles set records no roles"
    assert all(e["action"] == "refused" for e in office.custody.json("log")[before:])
    done = office.json_as("admin-1", "actor", "roles", "set")
    assert done["recorded"] is True and done["previous_seq"] == 1
    assert done["roles"]["roles"]["technician"] == ["hold-placed", "ingested", "viewed"]
    count = len(office.custody.json("log"))
    same = office.json_as("admin-1", "actor", "roles", "set")
    assert same["recorded"] is False and same["roles"]["seq"] == done["roles"]["seq"]
    text = office.as_("admin-1", "actor", "roles", "set")
    assert text.exit_code == 0 and text.stdout.startswith("unchanged")
    assert len(office.custody.json("log")) == count, "no change, no event"
    assert "differ" not in text.stderr


def test_each_event_is_judged_by_the_roles_in_force_when_it_was_made(office: Office, tmp_path: Path) -> None:
    [record] = _ingested(office, "tech-1", _file(tmp_path, "h.bin", b"held later"))
    digest = record["blake3"]
    _config(office, HOLDING_TECHS)
    assert office.json_as("admin-1", "actor", "roles", "set")["recorded"] is True
    placed = office.as_("tech-1", "hold", "place", "H-1", "--authority", "court", "--reason", "r", digest[:12])
    assert placed.exit_code == 0, placed.output
    _config(office, PLAIN_TECHS)
    assert office.json_as("admin-1", "actor", "roles", "set")["recorded"] is True
    refused = office.as_("tech-1", "hold", "place", "H-2", "--authority", "court", "--reason", "r", digest[:12])
    assert refused.exit_code == 4 and "may not record 'hold-placed'" in refused.stderr
    assert _findings(office) == set(), "the hold placed when the roles allowed it is not a finding"

    # forged through the ledger API with a valid signature while the roles did not allow it
    forged = _signed_as(office, "tech-1").append("hold-placed", actor="tech-1", role="technician",
                                                 subject={"evidence": digest}, details={"hold": "H-3", "authority": "a", "reason": "r"})
    expected = {(f"event {forged.seq}", "role-not-permitted")}
    assert _findings(office) == expected
    _config(office, HOLDING_TECHS)
    assert office.json_as("admin-1", "actor", "roles", "set")["recorded"] is True
    assert _findings(office) == expected, "roles that allow it later do not excuse it"

    # config.toml changed after the fact, without recording: the verdict stays
    for text in ("", PLAIN_TECHS, '[actors.roles.technician]\nactions = ["ingested"]\n'):
        _config(office, text)
        assert _findings(office) == expected
    report = office.custody("ledger", "verify")
    assert "roles: each event judged by the roles in force at it" in report.stderr


def test_a_roles_set_by_a_non_admin_is_a_finding_and_changes_no_roles(office: Office) -> None:
    widened = load_roles({"actors": {"roles": {"technician": {"actions": ["ingested", "disposed"]}}}})
    tech = _signed_as(office, "tech-1")
    grab = tech.append("roles-set", actor="tech-1", role="technician", details=widened.details())
    act = tech.append("disposed", actor="tech-1", role="technician", subject={"evidence": "0" * 64})
    unsigned = office.ledger().append("roles-set", actor="root", role="admin", details=widened.details())
    broken = _signed_as(office, "admin-1").append("roles-set", actor="admin-1", role="admin",
                                                  details={**widened.details(), "sha256": "0" * 64})
    assert _findings(office) == {
        (f"event {grab.seq}", "role-not-permitted"), (f"event {act.seq}", "role-not-permitted"),
        (f"event {act.seq}", "two-person"),  # and no request was approved for it
        (f"event {unsigned.seq}", "unsigned-claim"), (f"event {broken.seq}", "malformed")}
    assert office.verify()[1]["actors"]["roles_set"] == [1]
    shown = office.custody.json("actor", "roles", "show")
    assert shown["seq"] == 1, "the append goes by the roles ledger verify says are in force"
    created = office.as_("tech-1", "incident", "create", "INC-R", "--location", "x")
    assert created.exit_code == 0, "allowed by the roles in force; the forged roles (no incident-created) count for nothing"
    assert office.as_("admin-1", "actor", "roles", "set").exit_code == 0, "a broken roles-set blocks no administrator"


def test_a_ledger_made_before_roles_were_recorded_uses_config_roles_until_its_first_roles_set(
    initialized: Custody, key_dir: dict[str, Path]
) -> None:
    """No roles-set: enrollments and a technician's events appended as an older custody did. With
    no roles in config.toml, config.toml's roles are the shipped ones (custom roles:
    test_actors_roles_before.py)."""
    ledger = Ledger(f"sqlite:///{initialized.home / 'custody.db'}")
    admin = FileKeySigner.load("admin-1", key_dir["admin-1"])
    tech = FileKeySigner.load("tech-1", key_dir["tech-1"])
    ledger.event_signer = admin
    for name, role, signer in (("admin-1", "admin", admin), ("tech-1", "technician", tech)):
        ledger.append("actor-enrolled", actor="admin-1", role="admin", details={
            "name": name, "role": role, "key": signer.public_key.line, "fingerprint": signer.public_key.fingerprint})
    ledger.event_signer = tech
    ledger.append("viewed", actor="tech-1", role="technician")
    held = ledger.append("hold-placed", actor="tech-1", role="technician", details={"hold": "H"})
    report = json.loads(initialized("ledger", "verify", "--json").stdout)
    assert report["actors"]["roles_set"] == []
    assert [(f["subject"], f["kind"]) for f in report["findings"]] == [(f"event {held.seq}", "role-not-permitted")]
    text = initialized("ledger", "verify")
    assert "no roles-set event; every event judged by config.toml's roles: recorded before roles were in the ledger" in text.stderr
    assert "custody actor roles set" in text.stderr
    assert initialized.json("actor", "roles", "show")["seq"] is None
    recorded = initialized.json("--key", str(key_dir["admin-1"]), "actor", "roles", "set")
    assert recorded["recorded"] is True, "even the shipped roles: a later custody may ship others"
    assert (recorded["previous_seq"], recorded["roles"]["seq"]) == (None, held.seq + 1)
    after = json.loads(initialized("ledger", "verify", "--json").stdout)
    assert after["actors"]["roles_set"] == [held.seq + 1]
    assert [(f["subject"], f["kind"]) for f in after["findings"]] == [(f"event {held.seq}", "role-not-permitted")]


def test_verify_package_judges_by_the_packages_roles_set_events_and_an_edited_roles_json_is_a_finding(
    office: Office, tmp_path: Path
) -> None:
    from custody.ledger import checkpoint as notes
    from tests.cli.test_package import refresh_tag_manifests, reseal

    holding = '[actors.roles.technician]\nactions = ["ingested", "linked", "hold-placed", "viewed"]\n'
    plain = '[actors.roles.technician]\nactions = ["ingested", "linked", "viewed"]\n'
    incident = "2026-1207-CPD-09"
    assert office.as_("sup-1", "incident", "create", incident, "--agency", "CPD").exit_code == 0
    clip = _file(tmp_path, "p.bin", b"packaged footage")
    assert office.as_("tech-1", "ingest", str(clip), "--incident", incident).exit_code == 0
    digest = next(e["subject"]["evidence"] for e in office.custody.json("log") if e["action"] == "ingested")
    _config(office, holding)
    office.json_as("admin-1", "actor", "roles", "set")
    placed = office.as_("tech-1", "hold", "place", "H-1", "--authority", "court", "--reason", "r", digest[:12])
    assert placed.exit_code == 0, placed.output
    _config(office, plain)
    office.json_as("admin-1", "actor", "roles", "set")
    forged = _signed_as(office, "tech-1").append(
        "hold-placed", actor="tech-1", role="technician", subject={"evidence": digest, "incident": incident},
        details={"hold": "H-2", "authority": "a", "reason": "r"})
    _config(office, holding)  # not recorded: the package goes by the ledger's roles
    exported = office.as_("sup-1", "export", "--incident", incident, "--out", str(tmp_path / "pkg"),
                          "--recipient", "Public Defender", "--no-contact-sheets")
    assert exported.exit_code == 0, exported.output
    bag = tmp_path / "pkg"
    carried = [json.loads(line) for line in (bag / "custody/events.jsonl").read_text().splitlines()]
    roles_set = [e["seq"] for e in carried if e["action"] == "roles-set"]
    assert roles_set == _roles_set(office) and len(roles_set) == 3, "the package carries every roles-set event"
    plain_policy = load_roles({"actors": {"roles": {"technician": {"actions": ["ingested", "linked", "viewed"]}}}})
    assert json.loads((bag / "custody/roles.json").read_text()) == plain_policy.as_dict()

    def verify() -> tuple[int, dict[str, Any]]:
        result = office.custody("verify-package", str(bag), "--json")
        return result.exit_code, json.loads(result.stdout)

    line = next(n for n, e in enumerate(carried, 1) if e["seq"] == forged.seq)
    expected = {("role-not-permitted", f"custody/events.jsonl:{line} (event {forged.seq})")}
    code, report = verify()
    assert code == 3 and {(f["kind"], f["subject"]) for f in report["findings"]} == expected
    assert report["actors"]["roles_set"] == roles_set

    holding_policy = load_roles({"actors": {"roles": {"technician": {"actions": ["ingested", "linked", "hold-placed", "viewed"]}}}})
    (bag / "custody/roles.json").write_text(json.dumps(holding_policy.as_dict(), indent=2, sort_keys=True) + "\n")
    refresh_tag_manifests(bag)
    reseal(bag, notes.Signer.from_text((office.custody.home / "signing.key").read_text().strip()))
    code, report = verify()
    assert code == 3
    assert {(f["kind"], f["subject"]) for f in report["findings"]} == expected | {("mismatch", "custody/roles.json")}

"""Ledgers and packages made before roles were recorded in the ledger (no ``roles-set`` event),
by an agency with its own roles in config.toml: they keep verifying as they did then. A ledger
is judged by config.toml's roles until its first ``roles-set``, and by the recorded roles from
then on; a package with no ``roles-set`` event by its sealed ``roles.json``.

How the older ledger is made: custody before roles were recorded (commit 67a00b7) differed only
in not recording them. Its ``init --admin`` appended one event, the first administrator's
``actor-enrolled`` signed by the key it enrolls, and no ``roles-set``; every other command
appended the same events as today on a ledger with no ``roles-set``, judged by config.toml's
roles, and its export wrote config.toml's roles as ``roles.json``. So: ``custody init`` without
``--admin``, that very enrollment event through the ledger API (67a00b7's
``enroll_first_admin`` appended exactly these details), then today's commands; the tests check
that no ``roles-set`` is recorded on the way and that ``roles.json`` is byte for byte what
67a00b7's exporter wrote (``json.dumps(load_roles(config).as_dict(), indent=2,
sort_keys=True)``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from custody.actors.roles import load_roles
from custody.ledger import checkpoint as notes
from custody.ledger.database import Ledger
from custody.ledger.signatures import FileKeySigner
from tests.cli.test_actors import Office, _file, key_dir, make_key  # noqa: F401
from tests.cli.test_package import refresh_tag_manifests, reseal
from tests.conftest import Custody

CLERKS = ('[actors.roles.evidence-clerk]\n'
          'actions = ["incident-created", "ingested", "linked", "hold-inherited", "hold-placed", "viewed"]\n')
"""A role only this agency has: under the shipped roles every event of a clerk is a finding."""
NO_HOLDS = '[actors.roles.evidence-clerk]\nactions = ["incident-created", "ingested", "linked", "hold-inherited", "viewed"]\n'
INCIDENT = "2026-1207-CPD-11"
BEFORE = "recorded before roles were in the ledger"
SEALED = "roles from the package's roles.json (exported before roles were recorded in the ledger)"


@pytest.fixture
def older(custody: Custody, key_dir: dict[str, Path]) -> Office:  # noqa: F811
    """An agency's ledger as custody made it before roles were recorded: a clerk (custom role)
    and a supervisor enrolled, no roles-set event."""
    custody.home.mkdir(parents=True)
    (custody.home / "config.toml").write_text(CLERKS)
    assert custody("init").exit_code == 0
    admin = FileKeySigner.load("admin-1", key_dir["admin-1"])
    ledger = Ledger(f"sqlite:///{custody.home / 'custody.db'}")
    ledger.event_signer = admin
    ledger.append("actor-enrolled", actor="admin-1", role="admin", details={
        "name": "admin-1", "role": "admin", "key": admin.public_key.line, "fingerprint": admin.public_key.fingerprint})
    place = Office(custody, {**key_dir, "clerk-1": key_dir["tech-1"]})
    for name, role in (("clerk-1", "evidence-clerk"), ("sup-1", "supervisor")):
        enrolled = place.as_("admin-1", "actor", "enroll", name, "--role", role, "--key-file", str(place.keys[name]) + ".pub")
        assert enrolled.exit_code == 0, enrolled.output
    return place


def _clerk_holds(office: Office, tmp_path: Path) -> str:
    """The clerk creates an incident, ingests into it and places a hold: what only the agency's
    roles allow. Returns the object's digest."""
    assert office.as_("clerk-1", "incident", "create", INCIDENT, "--agency", "CPD").exit_code == 0
    ingested = office.as_("clerk-1", "ingest", str(_file(tmp_path, "c.bin", b"clerk's footage")), "--incident", INCIDENT)
    assert ingested.exit_code == 0, ingested.output
    digest = next(e["subject"]["evidence"] for e in office.custody.json("log") if e["action"] == "ingested")
    placed = office.as_("clerk-1", "hold", "place", "H-1", "--authority", "court", "--reason", "r", digest[:12])
    assert placed.exit_code == 0, placed.output
    assert "ledger records no roles yet" in placed.stderr and "custody actor roles set" in placed.stderr
    return digest


def _roles_set(office: Office) -> list[int]:
    return [e["seq"] for e in office.custody.json("log") if e["action"] == "roles-set"]


def _verify(office: Office) -> tuple[int, dict[str, Any]]:
    result = office.custody("ledger", "verify", "--json")
    return result.exit_code, json.loads(result.stdout)


def _kinds(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["subject"], f["kind"]) for f in report["findings"]}


def test_an_older_ledger_is_judged_by_config_roles_until_its_first_roles_set(older: Office, tmp_path: Path) -> None:
    digest = _clerk_holds(older, tmp_path)
    assert _roles_set(older) == [], "no roles-set recorded on the way: the ledger is as an older custody left it"
    events = len(older.custody.json("log"))
    code, report = _verify(older)
    assert (code, report["findings"], report["actors"]["roles_set"]) == (0, [], [])
    assert report["actors"]["roles_before"] == {"first": 0, "last": events - 1, "source": "config.toml's roles",
                                                "note": BEFORE, "judged": events - 1}
    text = older.custody("ledger", "verify")
    assert text.exit_code == 0
    assert f"no roles-set event; every event judged by config.toml's roles: {BEFORE}" in text.stdout
    assert "custody actor roles set" in text.stdout
    shown = older.custody.json("actor", "roles", "show")
    assert shown["seq"] is None and shown["roles"]["evidence-clerk"] and shown["config_differs"] is True

    # the shipped roles (what the first version of recorded roles judged it by) have no clerks
    (older.custody.home / "config.toml").write_text("")
    code, report = _verify(older)
    assert code == 3 and {kind for _, kind in _kinds(report)} == {"role-not-permitted"}
    (older.custody.home / "config.toml").write_text(CLERKS)

    done = older.custody("--key", str(older.keys["admin-1"]), "actor", "roles", "set", "--json")
    assert done.exit_code == 0, done.output
    recorded = json.loads(done.stdout)
    first = recorded["roles"]["seq"]
    assert (recorded["recorded"], recorded["previous_seq"], first) == (True, None, events)
    assert recorded["roles"]["roles"]["evidence-clerk"] == sorted(load_roles({"actors": {"roles": {
        "evidence-clerk": {"actions": json.loads(CLERKS.split("= ", 1)[1])}}}}).roles["evidence-clerk"])
    recorded_event = next(e for e in older.custody.json("log") if e["seq"] == first)
    assert recorded_event["details"]["before"] == load_roles({"actors": {"roles": {"evidence-clerk": {
        "actions": json.loads(CLERKS.split("= ", 1)[1])}}}}).details(), "the roles that judged the events before it"
    (older.custody.home / "config.toml").write_text("")  # config.toml no longer plays a part in any verdict
    code, report = _verify(older)
    assert (code, report["findings"], report["actors"]["roles_set"]) == (0, [], [first])
    recorded_before = f"the roles the roles-set event {first} records as those before it"
    assert report["actors"]["roles_before"] == {"first": 0, "last": first - 1, "source": recorded_before,
                                                "note": BEFORE, "judged": first - 1}
    assert f"roles: events 0..{first - 1} judged by {recorded_before}: {BEFORE}; then each event judged by the roles in force" \
        in older.custody("ledger", "verify").stdout

    # from the first roles-set on, the recorded roles judge: a clerk's hold is refused once they
    # no longer allow it, and one forged around the tool is a finding; the earlier hold is not
    (older.custody.home / "config.toml").write_text(NO_HOLDS)
    assert older.as_("admin-1", "actor", "roles", "set").exit_code == 0
    refused = older.as_("clerk-1", "hold", "place", "H-2", "--authority", "court", "--reason", "r", digest[:12])
    assert refused.exit_code == 4 and "may not record 'hold-placed'" in refused.stderr
    clerk = older.ledger()
    clerk.event_signer = FileKeySigner.load("clerk-1", older.keys["clerk-1"])
    forged = clerk.append("hold-placed", actor="clerk-1", role="evidence-clerk", subject={"evidence": digest},
                          details={"hold": "H-3", "authority": "a", "reason": "r"})
    (older.custody.home / "config.toml").write_text(CLERKS)  # config.toml allows it again: the ledger's roles do not
    code, report = _verify(older)
    assert code == 3 and _kinds(report) == {(f"event {forged.seq}", "role-not-permitted")}


def test_an_older_package_is_judged_by_its_sealed_roles_json(older: Office, tmp_path: Path) -> None:
    _clerk_holds(older, tmp_path)
    hold = next(e["seq"] for e in older.custody.json("log") if e["action"] == "hold-placed")
    exported = older.as_("sup-1", "export", "--incident", INCIDENT, "--out", str(tmp_path / "pkg"),
                         "--recipient", "Public Defender", "--no-contact-sheets")
    assert exported.exit_code == 0, exported.output
    bag = tmp_path / "pkg"
    carried = [json.loads(line) for line in (bag / "custody/events.jsonl").read_text().splitlines()]
    assert not [e for e in carried if e["action"] == "roles-set"] and hold in [e["seq"] for e in carried]
    older_roles_json = json.dumps(load_roles({"actors": {"roles": {"evidence-clerk": {"actions": json.loads(
        CLERKS.split("= ", 1)[1])}}}}).as_dict(), indent=2, sort_keys=True) + "\n"
    assert (bag / "custody/roles.json").read_text() == older_roles_json, "what custody wrote before roles were recorded"

    def verify() -> tuple[int, dict[str, Any]]:
        result = older.custody("verify-package", str(bag), "--json")
        return result.exit_code, json.loads(result.stdout)

    code, report = verify()
    assert (code, report["findings"]) == (0, [])
    assert report["actors"]["roles"] == SEALED and report["actors"]["roles_set"] == []
    text = older.custody("verify-package", str(bag))
    assert text.exit_code == 0 and SEALED in text.stdout
    (older.custody.home / "config.toml").write_text("")
    assert verify()[0] == 0, "the verifier's config.toml plays no part"

    # roles.json edited: the tag manifests and the seal catch it
    no_holds = load_roles({"actors": {"roles": {"evidence-clerk": {"actions": json.loads(NO_HOLDS.split("= ", 1)[1])}}}})
    (bag / "custody/roles.json").write_text(json.dumps(no_holds.as_dict(), indent=2, sort_keys=True) + "\n")
    code, report = verify()
    caught = {(f["kind"], f["subject"], f.get("manifest")) for f in report["findings"]}
    assert code == 3 and {("mismatch", "custody/roles.json", "tagmanifest-sha256.txt"),
                          ("mismatch", "custody/roles.json", "custody/seal.txt")} <= caught
    # and, manifests and seal made consistent by someone holding the key, it changes the verdict
    # only as the edit implies: the clerk's hold is then not permitted
    refresh_tag_manifests(bag)
    reseal(bag, notes.Signer.from_text((older.custody.home / "signing.key").read_text().strip()))
    code, report = verify()
    line = next(n for n, e in enumerate(carried, 1) if e["seq"] == hold)
    assert code == 3
    assert {(f["kind"], f["subject"]) for f in report["findings"]} == {
        ("role-not-permitted", f"custody/events.jsonl:{line} (event {hold})")}


def test_a_package_of_an_older_ledger_after_its_roles_were_recorded_judges_earlier_events_by_the_roles_before(
    older: Office, tmp_path: Path
) -> None:
    """Exported after 'actor roles set': the package carries the roles-set, which records the
    roles before it; the clerk's hold made before it is judged by those, roles.json is the copy
    of the recorded roles (an edit is a finding, as for any package with roles-set events)."""
    _clerk_holds(older, tmp_path)
    assert older.as_("admin-1", "actor", "roles", "set").exit_code == 0
    (older.custody.home / "config.toml").write_text("")
    exported = older.as_("sup-1", "export", "--incident", INCIDENT, "--out", str(tmp_path / "pkg"),
                         "--recipient", "Public Defender", "--no-contact-sheets")
    assert exported.exit_code == 0, exported.output
    bag = tmp_path / "pkg"
    [first] = [e["seq"] for e in map(json.loads, (bag / "custody/events.jsonl").read_text().splitlines())
               if e["action"] == "roles-set"]
    result = older.custody("verify-package", str(bag), "--json")
    report = json.loads(result.stdout)
    assert (result.exit_code, report["findings"], report["actors"]["roles_set"]) == (0, [], [first])
    assert report["actors"]["roles_before"]["source"] == f"the roles the roles-set event {first} records as those before it"
    roles_json = json.loads((bag / "custody/roles.json").read_text())
    roles_json["roles"]["evidence-clerk"].remove("hold-placed")
    (bag / "custody/roles.json").write_text(json.dumps(roles_json, indent=2, sort_keys=True) + "\n")
    refresh_tag_manifests(bag)
    reseal(bag, notes.Signer.from_text((older.custody.home / "signing.key").read_text().strip()))
    result = older.custody("verify-package", str(bag), "--json")
    assert result.exit_code == 3
    assert {(f["kind"], f["subject"]) for f in json.loads(result.stdout)["findings"]} == {("mismatch", "custody/roles.json")}


def test_a_roles_set_whose_roles_before_are_no_table_is_a_finding_and_gives_no_roles(older: Office, tmp_path: Path) -> None:
    _clerk_holds(older, tmp_path)
    admin = older.ledger()
    admin.event_signer = FileKeySigner.load("admin-1", older.keys["admin-1"])
    policy = load_roles({})
    broken = admin.append("roles-set", actor="admin-1", role="admin", details={**policy.details(), "before": ["everything"]})
    code, report = _verify(older)
    assert code == 3 and _kinds(report) == {(f"event {broken.seq}", "malformed")}
    assert report["actors"]["roles_set"] == [] and report["actors"]["roles_before"]["source"] == "config.toml's roles"

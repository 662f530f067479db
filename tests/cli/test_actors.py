"""Who acts: enrolled people, signed events, roles, two-person approvals, refused attempts."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from custody.ledger.database import Ledger
from custody.ledger.signatures import FileKeySigner
from tests.conftest import Custody, require_tool

PEOPLE = {"admin-1": "admin", "tech-1": "technician", "sup-1": "supervisor", "sup-2": "supervisor", "aud-1": "auditor"}


@dataclass
class Office:
    """A ledger with an administrator (enrolled at init) who enrolled one of each role."""

    custody: Custody
    keys: dict[str, Path]

    def as_(self, name: str, *args: str) -> Any:
        return self.custody("--key", str(self.keys[name]), *args)

    def json_as(self, name: str, *args: str) -> Any:
        result = self.as_(name, *args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def ledger(self) -> Ledger:
        return Ledger(f"sqlite:///{self.custody.home / 'custody.db'}")

    def verify(self) -> tuple[int, dict[str, Any]]:
        result = self.custody("ledger", "verify", "--json")
        return result.exit_code, json.loads(result.stdout)


def make_key(directory: Path, name: str) -> Path:
    keygen = require_tool("ssh-keygen")
    path = directory / name
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("people")
    return {name: make_key(directory, name) for name in [*PEOPLE, "stranger"]}


@pytest.fixture
def office(custody: Custody, key_dir: dict[str, Path]) -> Office:
    made = custody("init", "--admin", "admin-1", "--admin-key", str(key_dir["admin-1"]), "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["admin"]["name"] == "admin-1"
    place = Office(custody, key_dir)
    for name, role in PEOPLE.items():
        if name != "admin-1":
            enrolled = place.json_as("admin-1", "actor", "enroll", name, "--role", role, "--key-file", str(key_dir[name]) + ".pub")
            assert (enrolled["name"], enrolled["role"], enrolled["active"]) == (name, role, True)
    return place


def _file(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def test_init_enrolls_the_first_admin_with_an_event_signed_by_that_key(office: Office) -> None:
    listed = office.custody.json("actor", "list")
    assert [(p["name"], p["role"]) for p in listed] == list(PEOPLE.items())
    events = office.custody.json("log")
    assert [(e["seq"], e["action"], e["actor"], e["role"]) for e in events][:3] == [
        (0, "actor-enrolled", "admin-1", "admin"), (1, "roles-set", "admin-1", "admin"),
        (2, "actor-enrolled", "admin-1", "admin")]
    assert events[2]["details"]["name"] == "tech-1"
    code, report = office.verify()
    assert code == 0 and report["ok"] is True
    assert report["actors"]["signed"] == len(events) and report["actors"]["unsigned"] == 0
    assert report["actors"]["signers"] == {"admin-1": len(PEOPLE) + 1}
    assert report["actors"]["roles_set"] == [1]
    again = office.custody("init", "--admin", "mallory", "--admin-key", str(office.keys["stranger"]))
    assert again.exit_code == 4 and "already has an administrator" in again.stderr


def test_a_technicians_event_verifies_with_ssh_keygen_outside_the_tool(office: Office, tmp_path: Path) -> None:
    ingested = office.json_as("tech-1", "ingest", str(_file(tmp_path, "a.bin", b"footage")))
    assert ingested["results"][0]["status"] == "recorded" if "results" in ingested else True
    event = office.custody.json("log")[-1]
    assert (event["action"], event["actor"], event["role"]) == ("ingested", "tech-1", "technician")
    (tmp_path / "allowed_signers").write_text(office.custody("actor", "allowed-signers").stdout)
    shown = office.custody("actor", "signature", str(event["seq"]), "--bytes", str(tmp_path / "event.bytes"))
    assert shown.exit_code == 0
    (tmp_path / "event.sig").write_text(shown.stdout)
    assert (tmp_path / "event.bytes").read_bytes() == event["leaf"].encode("utf-8")
    verify = ["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed_signers"), "-n", "custody-event",
              "-s", str(tmp_path / "event.sig")]
    with (tmp_path / "event.bytes").open("rb") as stdin:
        good = subprocess.run([*verify, "-I", "tech-1"], stdin=stdin, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert 'Good "custody-event" signature for tech-1 with ED25519 key' in good.stdout
    with (tmp_path / "event.bytes").open("rb") as stdin:
        impostor = subprocess.run([*verify, "-I", "sup-1"], stdin=stdin, capture_output=True, text=True)
    assert impostor.returncode != 0


def test_an_unenrolled_key_is_refused_and_a_revoked_key_stops_counting(office: Office, tmp_path: Path) -> None:
    stranger = office.as_("stranger", "ingest", str(_file(tmp_path, "s.bin", b"s")))
    assert stranger.exit_code == 4 and "is not enrolled in this ledger" in stranger.stderr
    revoked = office.json_as("admin-1", "actor", "revoke", "tech-1", "--reason", "key lost")
    assert revoked["active"] is False and revoked["revoke_reason"] == "key lost"
    refused = office.as_("tech-1", "ingest", str(_file(tmp_path, "t.bin", b"t")))
    assert refused.exit_code == 4 and "was revoked at event" in refused.stderr
    assert office.custody("actor", "list", "--json").stdout.count("tech-1") == 0
    # an event signed with the revoked key all the same (a station that kept the key): a finding
    ledger = office.ledger()
    ledger.event_signer = FileKeySigner.load("tech-1", office.keys["tech-1"])
    forged = ledger.append("ingested", actor="tech-1", role="technician", details={"size": 1})
    code, report = office.verify()
    assert code == 3
    kinds = {(f["subject"], f["kind"]) for f in report["findings"]}
    assert (f"event {forged.seq}", "signer-revoked") in kinds
    text = office.custody("ledger", "verify")
    assert text.exit_code == 3 and f"event {forged.seq}: signed by tech-1's key" in text.stderr


def test_an_event_whose_role_may_not_take_the_action_is_refused_and_a_finding(office: Office, tmp_path: Path) -> None:
    [digest] = [r["blake3"] for r in _ingested(office, "tech-1", _file(tmp_path, "h.bin", b"held"))]
    refused = office.as_("tech-1", "hold", "place", "H-1", "--authority", "court", "--reason", "r", digest[:12])
    assert refused.exit_code == 4 and "tech-1 (technician) may not record 'hold-placed'" in refused.stderr
    last = office.custody.json("log")[-1]
    assert (last["action"], last["actor"], last["details"]["command"]) == ("refused", "tech-1", "custody hold place")
    assert "may not record 'hold-placed'" in last["details"]["reason"]
    assert office.custody.json("show", digest[:12])["legal_hold"] is False, "nothing was placed on the object"
    audit = office.as_("tech-1", "audit")
    assert audit.exit_code == 4 and "may not record 'audited'" in audit.stderr
    ledger = office.ledger()
    ledger.event_signer = FileKeySigner.load("tech-1", office.keys["tech-1"])
    wrong = ledger.append("hold-placed", actor="tech-1", role="technician", subject={"evidence": digest},
                          details={"hold": "X", "authority": "a", "reason": "r"})
    mislabeled = ledger.append("viewed", actor="sup-1", role="supervisor", subject={"evidence": digest})
    code, report = office.verify()
    assert code == 3
    kinds = {(f["subject"], f["kind"]) for f in report["findings"]}
    assert kinds == {(f"event {wrong.seq}", "role-not-permitted"), (f"event {mislabeled.seq}", "actor-mismatch"),
                     (f"event {mislabeled.seq}", "role-mismatch")}


def _ingested(office: Office, who: str, *paths: Path) -> list[dict[str, Any]]:
    office.json_as(who, "ingest", *map(str, paths))
    return [e["details"] | {"blake3": e["subject"]["evidence"]} for e in office.custody.json("log") if e["action"] == "ingested"]


def test_a_name_typed_without_a_key_cannot_pass_for_an_enrolled_person(office: Office, tmp_path: Path) -> None:
    typed = office.custody("ingest", str(_file(tmp_path, "x.bin", b"x")), env={"CUSTODY_ACTOR": "tech-1"})
    assert typed.exit_code == 4 and "tech-1 is a person enrolled in this ledger" in typed.stderr
    station = office.custody("ingest", str(_file(tmp_path, "y.bin", b"y")), env={"CUSTODY_ACTOR": "dock-3"})
    assert station.exit_code == 0
    ledger = office.ledger()
    claimed = ledger.append("viewed", actor="sup-1", role="supervisor")
    code, report = office.verify()
    assert code == 3
    assert [(f["subject"], f["kind"]) for f in report["findings"]] == [(f"event {claimed.seq}", "unsigned-claim")]
    events = office.custody.json("log")
    unsigned = {e["seq"] for e in events if e["actor"] in ("dock-3", "sup-1") or e["action"] == "refused"}
    assert set(report["actors"]["unsigned_events"]) == unsigned
    text = office.custody("ledger", "verify")
    assert f"{len(unsigned)} event(s) NOT signed by an enrolled person" in text.stderr


def test_unsigned_station_mode_without_an_administrator(initialized: Custody, tmp_path: Path) -> None:
    made = initialized("ingest", str(_file(tmp_path, "z.bin", b"z")))
    assert made.exit_code == 0
    result = initialized("ledger", "verify")
    assert result.exit_code == 0
    assert "0 event(s) signed by enrolled people, all checked; 1 event(s) NOT signed by an enrolled person" in result.stdout
    report = initialized.json("ledger", "verify")
    assert report["actors"]["unsigned_events"] == [0] and report["actors"]["signed"] == 0


def test_hold_release_needs_a_second_supervisor(office: Office, tmp_path: Path) -> None:
    [record] = _ingested(office, "tech-1", _file(tmp_path, "r.bin", b"release me"))
    placed = office.json_as("sup-1", "hold", "place", "SAO-1", "--authority", "court", "--reason", "review",
                            record["blake3"][:12])
    assert placed["active"] is True
    asked = office.json_as("sup-1", "hold", "release", "SAO-1", "--authority", "order 7", "--reason", "closed")
    seq = asked["request"]["request"]
    assert asked["request"]["kind"] == "hold-release"
    assert office.custody.json("show", record["blake3"][:12])["legal_hold"] is True, "a request changes nothing"
    own = office.as_("sup-1", "approve", str(seq))
    assert own.exit_code == 4 and "sup-1 made request" in own.stderr and "cannot approve it" in own.stderr
    tech = office.as_("tech-1", "approve", str(seq))
    assert tech.exit_code == 4
    unsigned = office.custody("approve", str(seq), env={"CUSTODY_ACTOR": "night-desk"})
    assert unsigned.exit_code == 4 and "needs two enrolled people" in unsigned.stderr
    assert office.custody.json("show", record["blake3"][:12])["legal_hold"] is True
    done = office.json_as("sup-2", "approve", str(seq))
    assert (done["approved_by"], done["outcome"]["hold"]["active"]) == ("sup-2", False)
    assert office.custody.json("show", record["blake3"][:12])["legal_hold"] is False
    twice = office.as_("sup-2", "approve", str(seq))
    assert twice.exit_code == 4 and "already approved" in twice.stderr
    events = office.custody.json("log")
    refusals = [(e["actor"], e["details"]["command"]) for e in events if e["action"] == "refused"]
    assert refusals == [("sup-1", "custody approve"), ("tech-1", "custody approve"), ("night-desk", "custody approve"),
                        ("sup-2", "custody approve")]
    approved = next(e for e in events if e["action"] == "approved")
    released = next(e for e in events if e["action"] == "hold-released")
    assert approved["details"]["request"] == seq and approved["actor"] == "sup-2"
    assert released["actor"] == "sup-2" and released["seq"] > approved["seq"]
    code, report = office.verify()
    assert code == 0, report["findings"]


def test_disposal_needs_a_second_supervisor(office: Office, tmp_path: Path) -> None:
    (office.custody.home / "config.toml").write_text('[retention.categories.unflagged]\ndays = 0\nseconds = 2\n')
    [record] = _ingested(office, "tech-1", _file(tmp_path, "d.bin", b"dispose me"))
    stored = office.custody.home / "store" / "objects" / "evidence" / record["blake3"]
    time.sleep(3)
    tech = office.as_("tech-1", "dispose", "--expired", "--confirm")
    assert tech.exit_code == 4 and "may not record 'disposal-requested'" in tech.stderr
    asked = office.json_as("sup-1", "dispose", "--expired", "--confirm")
    assert asked["confirmed"] is False and [o["blake3"] for o in asked["objects"]] == [record["blake3"]]
    assert stored.exists()
    seq = asked["request"]["request"]
    assert office.as_("sup-1", "approve", str(seq)).exit_code == 4
    assert office.as_("aud-1", "approve", str(seq)).exit_code == 4
    assert stored.exists()
    done = office.json_as("sup-2", "approve", str(seq))
    assert [d["blake3"] for d in done["outcome"]["disposed"]] == [record["blake3"]]
    assert not stored.exists()
    disposed = office.custody.json("log", record["blake3"][:12])[-1]
    assert (disposed["action"], disposed["actor"]) == ("disposed", "sup-2")
    assert f"request {seq} approved" in disposed["details"]["reason"]
    assert office.verify()[0] == 0


def test_enrollment_needs_an_administrators_key(office: Office) -> None:
    sup = office.as_("sup-1", "actor", "enroll", "mallory", "--role", "admin", "--key-file", str(office.keys["stranger"]) + ".pub")
    assert sup.exit_code == 4 and "may not record 'actor-enrolled'" in sup.stderr
    unsigned = office.custody("actor", "enroll", "mallory", "--role", "admin", "--key-file",
                              str(office.keys["stranger"]) + ".pub", env={"CUSTODY_ACTOR": "root"})
    assert unsigned.exit_code == 4
    assert [p["name"] for p in office.custody.json("actor", "list")] == list(PEOPLE)
    bad = office.as_("admin-1", "actor", "enroll", "x", "--role", "technician", "--key", "ssh-rsa AAAA")
    assert bad.exit_code == 2 and "ssh-ed25519" in bad.stderr


def test_signing_through_ssh_agent_keeps_the_private_key_out_of_custody(office: Office, tmp_path: Path) -> None:
    agent = require_tool("ssh-agent")
    started = subprocess.run([agent, "-s"], capture_output=True, text=True, check=True)
    env = dict(os.environ)
    for line in started.stdout.splitlines():
        if line.startswith(("SSH_AUTH_SOCK=", "SSH_AGENT_PID=")):
            name, value = line.split(";", 1)[0].split("=", 1)
            env[name] = value
    try:
        subprocess.run(["ssh-add", "-q", str(office.keys["sup-1"])], env=env, check=True, capture_output=True)
        public_only = tmp_path / "sup-1.pub"
        public_only.write_bytes(Path(str(office.keys["sup-1"]) + ".pub").read_bytes())
        os.environ["SSH_AUTH_SOCK"] = env["SSH_AUTH_SOCK"]
        try:
            made = office.custody("--key", str(public_only), "incident", "create", "INC-A", "--location", "Pilsen")
        finally:
            del os.environ["SSH_AUTH_SOCK"]
        assert made.exit_code == 0, made.output
    finally:
        subprocess.run([agent, "-k"], env=env, capture_output=True)
    event = office.custody.json("log")[-1]
    assert (event["action"], event["actor"]) == ("incident-created", "sup-1")
    signature = office.custody.json("actor", "signature", str(event["seq"]))
    assert signature["signer"] == "sup-1"
    assert office.verify()[0] == 0


def test_the_auditors_audit_is_signed_and_says_which_events_no_enrolled_person_signed(office: Office, tmp_path: Path) -> None:
    _ingested(office, "tech-1", _file(tmp_path, "a1.bin", b"a1"))
    station = office.custody("ingest", str(_file(tmp_path, "a2.bin", b"a2")), env={"CUSTODY_ACTOR": "dock-3"})
    assert station.exit_code == 0
    unsigned_seq = office.custody.json("log")[-1]["seq"]
    audit = office.as_("aud-1", "audit")
    assert audit.exit_code == 0, audit.output
    assert f"1 event(s) NOT signed by an enrolled person (events {unsigned_seq})" in audit.stdout
    report = office.json_as("aud-1", "audit")
    assert report["signatures"]["unsigned_events"] == [unsigned_seq] and report["signatures"]["findings"] == []
    audited = [e for e in office.custody.json("log") if e["action"] == "audited"]
    assert [(e["actor"], e["role"]) for e in audited] == [("aud-1", "auditor"), ("aud-1", "auditor")]
    assert office.custody.json("actor", "signature", str(audited[0]["seq"]))["signer"] == "aud-1"


def test_an_approved_disposal_destroys_only_what_its_request_named_and_still_due(office: Office, tmp_path: Path) -> None:
    """The approver approves a list: an object that expired after the request is not in it, and
    one placed under a hold between request and approval is kept."""
    (office.custody.home / "config.toml").write_text('[retention.categories.unflagged]\ndays = 0\nseconds = 2\n')
    first, held = _ingested(office, "tech-1", _file(tmp_path, "e1.bin", b"expired one"), _file(tmp_path, "e2.bin", b"expired two"))
    stored = office.custody.home / "store" / "objects" / "evidence"
    time.sleep(3)
    asked = office.json_as("sup-1", "dispose", "--expired", "--confirm")
    assert sorted(o["blake3"] for o in asked["objects"]) == sorted([first["blake3"], held["blake3"]])
    later = [r for r in _ingested(office, "tech-1", _file(tmp_path, "e3.bin", b"expired later"))
             if r["blake3"] not in (first["blake3"], held["blake3"])][0]
    office.json_as("sup-1", "hold", "place", "SAO-9", "--authority", "court", "--reason", "subpoena", held["blake3"][:12])
    time.sleep(3)
    assert {o["blake3"] for o in office.json_as("sup-1", "dispose", "--expired")["objects"]} == {first["blake3"], later["blake3"]}
    approved = office.as_("sup-2", "approve", str(asked["request"]["request"]), "--json")
    assert approved.exit_code == 4, approved.output
    done = json.loads(approved.stdout)
    assert [d["blake3"] for d in done["outcome"]["disposed"]] == [first["blake3"]]
    assert done["outcome"]["kept"] == [held["blake3"]]
    [refusal] = done["outcome"]["refused"]
    assert (refusal["blake3"], refusal["refused_by"]) == (held["blake3"], "lock")
    assert "under legal hold SAO-9" in refusal["reason"]
    assert not (stored / first["blake3"]).exists()
    assert (stored / held["blake3"]).exists() and (stored / later["blake3"]).exists()
    disposed = [e["subject"]["evidence"] for e in office.custody.json("log") if e["action"] == "disposed"]
    assert disposed == [first["blake3"]]
    assert office.verify()[0] == 0


def test_roles_are_data_an_agency_can_extend_and_add_to(office: Office, tmp_path: Path) -> None:
    """config.toml's [actors.roles.NAME] overrides a shipped role or adds one, once an
    administrator records it ('actor roles set'); what a role may do is then enforced (refused,
    exit 4) and checked by ledger verify from the recorded roles."""
    (office.custody.home / "config.toml").write_text(
        '[actors.roles.technician]\nactions = ["ingested", "hold-placed"]\n'
        '[actors.roles.evidence-clerk]\nactions = ["ingested", "linked"]\n')
    [record] = _ingested(office, "tech-1", _file(tmp_path, "c.bin", b"clerk"))
    early = office.as_("tech-1", "hold", "place", "H-8", "--authority", "court", "--reason", "r", record["blake3"][:12])
    assert early.exit_code == 4, "config.toml's roles are not applied until recorded"
    assert early.stderr.count("custody actor roles set") == 1 and "differ from the roles recorded" in early.stderr
    recorded = office.json_as("admin-1", "actor", "roles", "set")
    assert recorded["recorded"] is True and recorded["roles"]["roles"]["evidence-clerk"] == ["ingested", "linked"]
    placed = office.as_("tech-1", "hold", "place", "H-9", "--authority", "court", "--reason", "r", record["blake3"][:12])
    assert placed.exit_code == 0, placed.output
    narrowed = office.as_("tech-1", "incident", "create", "INC-T", "--location", "x")
    assert narrowed.exit_code == 4 and "may not record 'incident-created'" in narrowed.stderr
    clerk = make_key(tmp_path, "clerk-1")
    office.keys["clerk-1"] = clerk
    enrolled = office.json_as("admin-1", "actor", "enroll", "clerk-1", "--role", "evidence-clerk", "--key-file", str(clerk) + ".pub")
    assert enrolled["role"] == "evidence-clerk"
    assert office.as_("clerk-1", "ingest", str(_file(tmp_path, "k.bin", b"k"))).exit_code == 0
    refused = office.as_("clerk-1", "hold", "place", "H-10", "--authority", "court", "--reason", "r", record["blake3"][:12])
    assert refused.exit_code == 4 and "clerk-1 (evidence-clerk) may not record 'hold-placed'" in refused.stderr
    code, report = office.verify()
    assert code == 0, report["findings"]
    unknown = office.as_("admin-1", "actor", "enroll", "x-1", "--role", "janitor", "--key-file", str(clerk) + ".pub")
    assert unknown.exit_code == 2 and "janitor" in unknown.stderr

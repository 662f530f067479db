"""The two-person rule in the log: once people are enrolled, a disposal or a hold release counts
only under a request a second enrolled person, whose role may approve it, approved before it.

The forged events are appended through the ledger API directly, each with a valid signature of
an enrolled key: what a station that skipped the tool's own checks could write. ``ledger verify``
and ``verify-package`` must find each (exit 3, kind ``two-person``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from custody.ledger.database import CustodyEvent, Ledger
from custody.ledger.signatures import FileKeySigner
from tests.cli.test_actors import Office, _file, _ingested, key_dir, office  # noqa: F401

INCIDENT = "2026-1207-CPD-09"


def _as(office: Office, name: str) -> Ledger:
    ledger = office.ledger()
    ledger.event_signer = FileKeySigner.load(name, office.keys[name])
    return ledger


def _forge(office: Office, name: str, action: str, *, subject: dict[str, str] | None = None,
           **details: Any) -> CustodyEvent:
    role = {"tech-1": "technician", "aud-1": "auditor"}.get(name, "supervisor")
    return _as(office, name).append(action, actor=name, role=role, subject=subject, details=details)


def _dispose(office: Office, name: str, blake3: str, **extra: Any) -> CustodyEvent:
    return _forge(office, name, "disposed", subject={"evidence": blake3}, blake3=blake3, reason="forged", **extra)


def _request(office: Office, name: str, *objects: str) -> CustodyEvent:
    return _forge(office, name, "disposal-requested", request="disposal", params={"objects": list(objects)},
                  summary=f"destroy {len(objects)} object(s)")


def _approve(office: Office, name: str, request: CustodyEvent) -> CustodyEvent:
    return _forge(office, name, "approved", request=request.seq, kind="disposal", requested_by=request.actor)


def _two_person(office: Office) -> dict[int, str]:
    """The two-person findings of ledger verify, by event (every other finding fails the test)."""
    code, report = office.verify()
    assert code == (3 if report["findings"] else 0)
    assert {f["kind"] for f in report["findings"]} <= {"two-person"}, report["findings"]
    found = {int(f["subject"].removeprefix("event ")): f["message"] for f in report["findings"]}
    assert len(found) == len(report["findings"]), "one finding per event"
    return found


def _two(office: Office, tmp_path: Path) -> tuple[str, str]:
    first, second = (r["blake3"] for r in _ingested(office, "tech-1", _file(tmp_path, "x.bin", b"x"),
                                                    _file(tmp_path, "y.bin", b"y")))
    return first, second


def test_a_disposal_or_release_with_no_approved_request_is_a_finding(office: Office, tmp_path: Path) -> None:
    x, y = _two(office, tmp_path)
    office.json_as("sup-1", "hold", "place", "H-1", "--authority", "court", "--reason", "r", x[:12])
    assert _two_person(office) == {}
    bare = _dispose(office, "sup-1", x)
    released = _forge(office, "sup-1", "hold-released", subject={"evidence": x}, hold="H-1", authority="a", reason="r")
    asked = _request(office, "sup-1", y)
    unapproved = _dispose(office, "sup-2", y)
    found = _two_person(office)
    assert set(found) == {bare.seq, released.seq, unapproved.seq}
    assert found[bare.seq] == f"destroys {x} with no disposal request before it"
    assert found[released.seq] == f"releases hold 'H-1' on {x} with no hold-release request before it"
    assert found[unapproved.seq] == f"destroys {y} under request {asked.seq}, which nobody approved before it"
    text = office.custody("ledger", "verify")
    assert text.exit_code == 3 and f"event {bare.seq}: destroys {x} with no disposal request" in text.stderr


def test_self_approval_and_an_approver_whose_role_may_not_approve_are_findings(office: Office, tmp_path: Path) -> None:
    x, _ = _two(office, tmp_path)
    asked = _request(office, "sup-1", x)
    own = _approve(office, "sup-1", asked)
    (office.custody.home / "config.toml").write_text(
        '[actors.roles.technician]\nactions = ["ingested", "viewed", "approved", "disposed"]\n')
    assert office.json_as("admin-1", "actor", "roles", "set")["recorded"] is True
    by_tech = _approve(office, "tech-1", asked)
    early = _dispose(office, "tech-1", x)
    # a later change of approvals does not make the earlier approval count
    (office.custody.home / "config.toml").write_text(
        '[actors.roles.technician]\nactions = ["ingested", "viewed", "approved", "disposed"]\n'
        '[actors.approvals]\ndisposal = ["supervisor", "technician"]\n')
    assert office.json_as("admin-1", "actor", "roles", "set")["recorded"] is True
    found = _two_person(office)
    assert set(found) == {own.seq, by_tech.seq, early.seq}
    assert found[own.seq] == f"sup-1 approves their own request {asked.seq}: a second enrolled person must"
    assert found[by_tech.seq] == ("tech-1 (technician) may not approve a disposal request by the roles in force; "
                                  "roles that may: supervisor")
    assert found[early.seq] == f"destroys {x} under request {asked.seq}, which nobody approved before it"
    approved = _approve(office, "sup-2", asked)
    again = _approve(office, "tech-1", asked)
    done = _dispose(office, "sup-2", x)
    found = _two_person(office)
    assert approved.seq not in found and done.seq not in found
    assert found[again.seq] == f"approves request {asked.seq} again: sup-2 approved it at event {approved.seq}"
    assert office.custody("approve", "--list", "--json").exit_code == 0


def test_an_act_covers_only_what_its_request_named_once_and_by_its_approver(office: Office, tmp_path: Path) -> None:
    x, y = _two(office, tmp_path)
    [z] = [r["blake3"] for r in _ingested(office, "tech-1", _file(tmp_path, "z.bin", b"z")) if r["blake3"] not in (x, y)]
    asked = _request(office, "sup-1", x, z)
    _approve(office, "sup-2", asked)
    other = _dispose(office, "sup-2", y)
    named_wrong = _dispose(office, "sup-2", y, request=asked.seq)
    by_requester = _dispose(office, "sup-1", z)
    done = _dispose(office, "sup-2", x, request=asked.seq)
    twice = _dispose(office, "sup-2", x)
    not_a_request = _dispose(office, "sup-2", z, request=done.seq)
    found = _two_person(office)
    assert set(found) == {other.seq, named_wrong.seq, by_requester.seq, twice.seq, not_a_request.seq}
    assert found[other.seq] == f"destroys {y}, which no disposal request before it names (request(s) {asked.seq} name others)"
    assert found[named_wrong.seq].startswith(f"destroys {y}, which no disposal request before it names")
    assert found[by_requester.seq] == f"destroys {z} as sup-1, but request {asked.seq} was approved by sup-2, who carries it out"
    assert found[twice.seq] == f"destroys {x} a second time under request {asked.seq}: a request covers each object once"
    assert found[not_a_request.seq] == f"destroys {z} under request {done.seq}, which is not a request recorded before it"
    assert _dispose(office, "sup-2", z).seq not in _two_person(office), "z is still covered, once"


def test_before_anyone_is_enrolled_one_person_disposes_and_releases(initialized: Any, tmp_path: Path) -> None:
    made = initialized("ingest", str(_file(tmp_path, "s.bin", b"station")), "--json")
    assert made.exit_code == 0, made.output
    blake3 = initialized.json("log")[-1]["subject"]["evidence"]
    assert initialized("hold", "place", "H-0", "--authority", "court", "--reason", "r", blake3[:12]).exit_code == 0
    released = initialized("hold", "release", "H-0", "--authority", "order", "--reason", "closed", "--json")
    assert released.exit_code == 0, released.output
    assert json.loads(released.stdout)["active"] is False
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 0, result.stdout


def test_verify_package_checks_the_rule_on_the_events_it_carries(office: Office, tmp_path: Path) -> None:
    assert office.as_("sup-1", "incident", "create", INCIDENT, "--location", "Pilsen").exit_code == 0
    clips = [_file(tmp_path, name, name.encode()) for name in ("p.bin", "q.bin")]
    done = office.as_("tech-1", "ingest", *map(str, clips), "--incident", INCIDENT)
    assert done.exit_code == 0, done.output
    p, q = [e["subject"]["evidence"] for e in office.custody.json("log") if e["action"] == "ingested"]
    office.json_as("sup-1", "hold", "place", "H-5", "--authority", "court", "--reason", "subpoena", p[:12])
    office.json_as("sup-1", "hold", "place", "H-6", "--authority", "court", "--reason", "subpoena", q[:12])
    asked = office.json_as("sup-1", "hold", "release", "H-5", "--authority", "order 7", "--reason", "closed")
    request = asked["request"]["request"]
    approved = office.json_as("sup-2", "approve", str(request))
    events = office.custody.json("log")
    [released] = [e for e in events if e["action"] == "hold-released"]
    assert released["details"]["request"] == request and released["actor"] == "sup-2"
    first = tmp_path / "first"
    assert office.as_("sup-1", "export", "--incident", INCIDENT, "--out", str(first), "--recipient", "PD",
                      "--no-contact-sheets").exit_code == 0
    carried = {json.loads(line)["seq"] for line in (first / "custody/events.jsonl").read_text().splitlines()}
    assert {request, approved["approved_seq"], released["seq"]} <= carried, "the release, its request and approval"
    clean = office.custody("verify-package", str(first), "--json")
    assert clean.exit_code == 0, clean.stdout
    forged = _forge(office, "sup-1", "hold-released", subject={"evidence": q, "incident": INCIDENT}, hold="H-6",
                    authority="a", reason="r", scope={"objects": [q]}, whole_hold=True, still_held_by=[])
    assert set(_two_person(office)) == {forged.seq}
    second = tmp_path / "second"
    assert office.as_("sup-1", "export", "--incident", INCIDENT, "--out", str(second), "--recipient", "PD",
                      "--no-contact-sheets").exit_code == 0
    result = office.custody("verify-package", str(second), "--json")
    assert result.exit_code == 3, result.stdout
    findings = json.loads(result.stdout)["findings"]
    assert [(f["kind"], f["message"]) for f in findings if f["kind"] == "two-person"] == [
        ("two-person", f"releases hold 'H-6' on {q}, which no hold-release request before it names (request(s) {request} name others)")]
    assert [f for f in findings if f["kind"] != "two-person"] == []

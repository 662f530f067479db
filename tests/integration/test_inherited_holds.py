"""Evidence linked to an incident under legal hold inherits the hold: a technician links and
ingests into a held incident, the object is held in the store (local and Ceph RGW), and the
hold is recorded as ``hold-inherited`` signed by the technician, naming the incident and the
``hold-placed`` event it follows from; a technician still may not place a hold; an inherited
hold that follows from no hold is refused at append time and a finding in the log; releasing
the incident's hold (two people) releases the inherited hold too."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from custody.actors.identity import SignedActor, UnsignedStation, resolve_person
from custody.actors.roles_log import roles_in_force
from custody.errors import PolicyRefused
from custody.ledger.database import Ledger
from custody.ledger.queries import signatures_for
from custody.ledger.signatures import FileKeySigner
from tests.conftest import require_tool
from tests.integration.test_refused_events import Office, keys, office  # noqa: F401

pytestmark = pytest.mark.integration

INCIDENT = "INC-UOF-7"


def _ledger(office: Office) -> Ledger:
    return Ledger(f"sqlite:///{office.custody.home / 'custody.db'}")


def _held_incident(office: Office, tmp_path: Path) -> tuple[str, int]:
    """An incident with one recording, under legal hold SAO-7: (its digest, the hold-placed seq)."""
    assert office.as_("tech-1", "incident", "create", INCIDENT, "--location", "Pilsen").exit_code == 0
    [first] = office.ingest(tmp_path, "first.mp4")
    assert office.as_("tech-1", "link", first[:12], "--incident", INCIDENT).exit_code == 0
    placed = office.as_("sup-1", "hold", "place", "SAO-7", "--authority", "Cook County SAO", "--reason",
                        "use of force review", "--incident", INCIDENT)
    assert placed.exit_code == 0, placed.output
    [origin] = [e["seq"] for e in office.events() if e["action"] == "hold-placed"]
    return first, origin


def _ssh_verified(office: Office, event: dict[str, Any], work: Path) -> None:
    """Stock ssh-keygen verifies the event's signature by its signer."""
    keygen = require_tool("ssh-keygen")
    signers, data, sig = work / "allowed_signers", work / f"event-{event['seq']}.bytes", work / f"event-{event['seq']}.sig"
    signers.write_text(office.custody("actor", "allowed-signers").stdout)
    shown = office.custody("actor", "signature", str(event["seq"]), "--bytes", str(data))
    assert shown.exit_code == 0, shown.output
    sig.write_text(shown.stdout)
    with data.open("rb") as stdin:
        done = subprocess.run([keygen, "-Y", "verify", "-f", str(signers), "-I", event["actor"], "-n", "custody-event",
                               "-s", str(sig)], stdin=stdin, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr + done.stdout


def test_a_technician_links_and_ingests_into_a_held_incident(office: Office, tmp_path: Path) -> None:
    first, origin = _held_incident(office, tmp_path)
    [late] = office.ingest(tmp_path, "late.mp4")
    linked = office.as_("tech-1", "link", late[:12], "--incident", INCIDENT)
    assert linked.exit_code == 0, linked.output
    clip = tmp_path / "bodycam.mp4"
    clip.write_bytes(b"body camera footage of the stop" * 80)
    ingested = office.as_("tech-1", "ingest", str(clip), "--incident", INCIDENT, "--json")
    assert ingested.exit_code == 0, ingested.output
    events = office.events()
    [body] = [e["subject"]["evidence"] for e in events if e["action"] == "ingested" and e["seq"] > origin
              and e["subject"]["evidence"] != late]
    inherited = [e for e in events if e["action"] == "hold-inherited"]
    assert [e["subject"]["evidence"] for e in inherited] == [late, body]
    for event in inherited:
        assert (event["actor"], event["role"]) == ("tech-1", "technician")
        assert event["subject"]["incident"] == INCIDENT
        assert (event["details"]["hold"], event["details"]["incident"], event["details"]["inherits"]) == ("SAO-7", INCIDENT, origin)
        assert office.stat(event["subject"]["evidence"]).legal_hold is True, "held in the store"
    stored = signatures_for(_ledger(office), [e["seq"] for e in inherited])
    assert {s.signer for s in stored.values()} == {"tech-1"} and len(stored) == 2
    assert {s.key_fingerprint for s in stored.values()} == {office.fingerprint("tech-1")}
    _ssh_verified(office, inherited[0], tmp_path)
    assert office.custody.json("show", late[:12])["holds"] == ["SAO-7"]
    report = office.custody.json("ledger", "verify")
    assert report["ok"] is True, report
    audit = office.as_("aud-1", "audit")
    assert audit.exit_code == 0, audit.output
    out = tmp_path / "package"
    exported = office.as_("tech-1", "export", "--incident", INCIDENT, "--out", str(out), "--recipient", "Public Defender",
                          "--no-contact-sheets")
    assert exported.exit_code == 0, exported.output
    verified = office.custody("verify-package", str(out), "--json")
    assert verified.exit_code == 0, verified.stdout
    assert json.loads(verified.stdout)["findings"] == []
    assert "inherited from incident INC-UOF-7" in (out / "report.html").read_text()

    before = office.events()
    refused = office.as_("tech-1", "hold", "place", "MINE", "--authority", "me", "--reason", "my choice", late[:12])
    assert refused.exit_code == 4 and "tech-1 (technician) may not record 'hold-placed'" in refused.stderr
    assert office.one_refusal(before)["details"]["refused_by"] == "role"

    asked = office.json_as("sup-1", "hold", "release", "SAO-7", "--authority", "order of 2027-01-04", "--reason", "closed")
    assert office.stat(late).legal_hold is True, "a request changes nothing"
    approved = office.as_("sup-2", "approve", str(asked["request"]["request"]), "--json")
    assert approved.exit_code == 0, approved.output
    released = [e for e in office.events() if e["action"] == "hold-released"]
    assert {e["subject"]["evidence"] for e in released} == {first, late, body}
    assert {e["actor"] for e in released} == {"sup-2"}
    for digest in (first, late, body):
        assert office.stat(digest).legal_hold is False, "released in the store"
        assert office.custody.json("show", digest[:12])["holds"] == []
    assert office.custody.json("ledger", "verify")["ok"] is True


@pytest.mark.parametrize("office", ["local"], indirect=True)
def test_an_inherited_hold_that_follows_from_no_hold_is_refused_and_a_finding(office: Office, tmp_path: Path) -> None:
    """Validly signed by a technician, through the ledger API: an inherited hold for an incident
    with no hold, and one naming an event that is not the placing of the hold, are refused by
    both append policies, and once in the log (no policy) each is an 'inherited-hold' finding in
    ledger verify and in verify-package."""
    _first, origin = _held_incident(office, tmp_path)
    assert office.as_("tech-1", "incident", "create", "INC-FREE", "--location", "Pilsen").exit_code == 0
    [free, held] = office.ingest(tmp_path, "free.mp4", "held.mp4")
    assert office.as_("tech-1", "link", free[:12], "--incident", "INC-FREE").exit_code == 0
    assert office.as_("tech-1", "link", held[:12], "--incident", INCIDENT).exit_code == 0
    [linked] = [e["seq"] for e in office.events() if e["action"] == "linked" and e["subject"]["evidence"] == held]
    forgeries = [
        ({"evidence": free, "incident": "INC-FREE"},
         {"hold": "SAO-7", "authority": "Cook County SAO", "reason": "use of force review", "scope": {"incident": "INC-FREE"},
          "incident": "INC-FREE", "inherits": origin}),
        ({"evidence": held, "incident": INCIDENT},
         {"hold": "SAO-7", "authority": "Cook County SAO", "reason": "use of force review", "scope": {"incident": INCIDENT},
          "incident": INCIDENT, "inherits": linked}),
    ]
    ledger = _ledger(office)
    signer = FileKeySigner.load("tech-1", office.keys["tech-1"])
    policies = [(SignedActor(resolve_person(ledger, signer), roles_in_force(ledger, {}).policy, ledger=ledger), signer,
                 "tech-1", "technician"), (UnsignedStation(ledger, {}), None, "dock-3", "station")]
    for policy, key, actor, role in policies:
        ledger.append_policy, ledger.event_signer = policy, key
        for subject, details in forgeries:
            with pytest.raises(PolicyRefused) as refused:
                ledger.append("hold-inherited", actor=actor, role=role, subject=subject, details=details)
            assert f"{actor} may not record this 'hold-inherited'" in str(refused.value)
    assert office.custody.json("ledger", "verify")["ok"] is True, "nothing was appended"
    ledger.append_policy, ledger.event_signer = None, signer
    seqs = [ledger.append("hold-inherited", actor="tech-1", role="technician", subject=subject, details=details).seq
            for subject, details in forgeries]
    ledger.event_signer = None
    result = office.custody("ledger", "verify", "--json")
    assert result.exit_code == 3
    found = {(f["subject"], f["kind"]) for f in json.loads(result.stdout)["findings"]}
    assert found == {(f"event {seq}", "inherited-hold") for seq in seqs}
    text = office.custody("ledger", "verify")
    assert "which is under no such hold at this point" in text.stderr
    assert f"inherits event {linked} as the placing of legal hold 'SAO-7'" in text.stderr
    out = tmp_path / "free-package"
    assert office.as_("tech-1", "export", "--incident", "INC-FREE", "--out", str(out), "--no-contact-sheets").exit_code == 0
    verified = office.custody("verify-package", str(out), "--json")
    assert verified.exit_code == 3
    assert [f["kind"] for f in json.loads(verified.stdout)["findings"]] == ["inherited-hold"]


@pytest.mark.parametrize("office", ["local"], indirect=True)
def test_a_package_of_another_incident_carries_the_hold_an_object_inherited(office: Office, tmp_path: Path) -> None:
    """An object linked to a held incident and to another: the other incident's package carries
    the placing its inherited hold follows from, and verifies."""
    _first, origin = _held_incident(office, tmp_path)
    assert office.as_("tech-1", "incident", "create", "INC-B", "--location", "Pilsen").exit_code == 0
    [shared] = office.ingest(tmp_path, "shared.mp4")
    for incident in (INCIDENT, "INC-B"):
        assert office.as_("tech-1", "link", shared[:12], "--incident", incident).exit_code == 0
    out = tmp_path / "b-package"
    assert office.as_("tech-1", "export", "--incident", "INC-B", "--out", str(out), "--no-contact-sheets").exit_code == 0
    carried = [json.loads(line) for line in (out / "custody/events.jsonl").read_text().splitlines()]
    assert origin in {e["seq"] for e in carried}
    verified = office.custody("verify-package", str(out), "--json")
    assert verified.exit_code == 0, verified.stdout

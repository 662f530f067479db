"""What each role may do once people are enrolled: every action custody records belongs to some
role (a release is the supervisor's, a new ledger key the administrator's), and a station
without a person's key keeps to the station role, its audits no audits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from custody.ledger.signatures import FileKeySigner
from tests.cli.test_actors import PEOPLE, Office, _file, key_dir, office  # noqa: F401
from tests.conftest import Custody


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


def _station(office: Office, *args: str) -> Any:
    """A command at a station without a person's key (dock-3 is nobody enrolled)."""
    return office.custody(*args, env={"CUSTODY_ACTOR": "dock-3"})


def test_a_station_without_a_key_keeps_to_the_station_role_once_people_are_enrolled(office: Office, tmp_path: Path) -> None:
    ingested = _station(office, "ingest", str(_file(tmp_path, "s.bin", b"station")), "--json")
    assert ingested.exit_code == 0, ingested.output
    digest = office.custody.json("log")[-1]["subject"]["evidence"]
    assert _station(office, "verify", digest[:12]).exit_code == 0
    held = _station(office, "hold", "place", "H-1", "--authority", "court", "--reason", "r", digest[:12])
    assert held.exit_code == 4, held.output
    assert "dock-3 (station, no key) may not record 'hold-placed'" in held.stderr and "--key" in held.stderr
    assert office.custody.json("show", digest[:12])["legal_hold"] is False, "refused before the store was changed"
    audit = _station(office, "audit")
    assert audit.exit_code == 4 and "dock-3 (station, no key) may not record 'audited'" in audit.stderr
    events = office.custody.json("log")
    assert not [e for e in events if e["action"] in ("hold-placed", "audited")]
    refused = [(e["actor"], e["details"]["command"], e["details"]["refused_by"]) for e in events if e["action"] == "refused"]
    assert refused == [("dock-3", "custody hold place", "role"), ("dock-3", "custody audit", "role")]
    assert all(e["details"].get("key") is None for e in events if e["action"] == "refused"), "unsigned refusals"
    # linking to a held incident gives the object the incident's hold: an inherited hold, which
    # the station role records (placing one stays refused)
    assert office.as_("sup-1", "incident", "create", "I-H", "--location", "Pilsen").exit_code == 0
    assert office.as_("sup-1", "hold", "place", "H-I", "--authority", "SAO", "--reason", "r", "--incident", "I-H").exit_code == 0
    linked = _station(office, "link", digest[:12], "--incident", "I-H")
    assert linked.exit_code == 0, linked.output
    late = _station(office, "ingest", str(_file(tmp_path, "late.bin", b"late")), "--incident", "I-H")
    assert late.exit_code == 0, late.output
    inherited = [e for e in office.custody.json("log") if e["action"] == "hold-inherited"]
    assert [(e["actor"], e["details"]["hold"], e["details"]["incident"]) for e in inherited] == [("dock-3", "H-I", "I-H")] * 2
    for event in inherited:
        assert office.custody.json("show", event["subject"]["evidence"][:12])["legal_hold"] is True
    code, report = office.verify()
    assert code == 0, report["findings"]
    # the same events appended past the tool's checks, unsigned: findings
    ledger = office.ledger()
    placed = ledger.append("hold-placed", actor="dock-3", role="technician", subject={"evidence": digest},
                           details={"hold": "H-2", "authority": "a", "reason": "r"})
    code, report = office.verify()
    assert code == 3
    assert [(f["subject"], f["kind"]) for f in report["findings"]] == [(f"event {placed.seq}", "role-not-permitted")]
    assert "judged by the station role, which may not record 'hold-placed'" in report["findings"][0]["message"]
    enrolled = office.as_("admin-1", "actor", "enroll", "dock-3", "--role", "station", "--key-file",
                          str(office.keys["stranger"]) + ".pub")
    assert enrolled.exit_code == 2 and "role of unsigned station events" in enrolled.stderr


def test_before_anyone_is_enrolled_a_station_records_anything(initialized: Custody, tmp_path: Path) -> None:
    assert initialized("ingest", str(_file(tmp_path, "a.bin", b"a"))).exit_code == 0
    digest = initialized.json("log")[-1]["subject"]["evidence"]
    assert initialized("hold", "place", "H-1", "--authority", "court", "--reason", "r", digest[:12]).exit_code == 0
    assert initialized("incident", "create", "I-1", "--location", "x").exit_code == 0
    audit = initialized("audit", "--json")
    assert audit.exit_code == 0, audit.output
    assert [e["action"] for e in initialized.json("log")] == ["ingested", "hold-placed", "incident-created", "audited"]
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["actors"]["signed"] == 0


def test_the_audit_schedule_counts_only_audits_an_auditor_signed(office: Office, tmp_path: Path) -> None:
    for number in range(6):
        assert office.as_("tech-1", "ingest", str(_file(tmp_path, f"r{number}.bin", f"r{number}".encode()))).exit_code == 0
    first = office.json_as("aud-1", "audit", "--rotation", "3")
    assert first["rotation"] == {"n": 3, "slot": 0}
    audited = office.custody.json("log")[-1]
    assert (audited["action"], audited["actor"]) == ("audited", "aud-1")
    # audits of slots 1 and 2 recorded by a station without a key and by a technician's key,
    # past the tool's checks: neither is an audit
    claimed = {**audited["details"], "rotation": {"n": 3, "slot": 1}}
    office.ledger().append("audited", actor="dock-3", role="auditor", details=claimed)
    tech = office.ledger()
    tech.event_signer = FileKeySigner.load("tech-1", office.keys["tech-1"])
    tech.append("audited", actor="tech-1", role="technician", details={**claimed, "rotation": {"n": 3, "slot": 2}})
    run = office.as_("aud-1", "audit", "--rotation", "3", "--json")
    assert run.exit_code == 3, "the audit reports the two forged events"
    second = json.loads(run.stdout)
    assert {(f["subject"], f["kind"]) for f in second["signatures"]["findings"]} == {
        (f"event {audited['seq'] + 1}", "role-not-permitted"), (f"event {audited['seq'] + 2}", "role-not-permitted")}
    assert second["rotation"] == {"n": 3, "slot": 1}, "the next slot follows the auditor's own audit"
    assert {o["last_full_check"]["seq"] for o in second["objects"] if o["last_full_check"]} <= {first["seq"], second["seq"]}

"""Incidents, links, retention categories, legal holds and disposition through the CLI."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage.local import LocalStore
from tests.conftest import Custody

FULL = [
    "--occurred-at", "2026-11-01T14:03:00-06:00", "--location", "3400 W Cermak Rd",
    "--agency", "ICE", "--agency", "CBP", "--supervisor-name", "J. Doe", "--supervisor-badge", "4471",
    "--credentials", "refused", "--use-of-force", "taser deployed", "--detentions", "2",
    "--injuries", "abrasions", "--ems-summoned", "--aid-rendered",
    "--citation", "720 ILCS 5/12-3", "--citation", "720 ILCS 5/12-6", "--violation", "battery",
    "--report-number", "RD-JH123456",
    "--note", "filed by unit 1234",
]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _files(tmp_path: Path, n: int, prefix: str = "clip") -> list[Path]:
    paths = []
    for index in range(n):
        path = tmp_path / f"{prefix}-{index}.mp4"
        path.write_bytes(f"{prefix} footage {index}".encode() * 50)
        paths.append(path)
    return paths


def _ingest(custody: Custody, *paths: Path, extra: tuple[str, ...] = ()) -> list[dict]:  # type: ignore[type-arg]
    result = custody("ingest", *map(str, paths), *extra, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _actions(custody: Custody) -> list[str]:
    return [e["action"] for e in custody.json("log")]


def _store(custody: Custody) -> LocalStore:
    return LocalStore(custody.home / "store")


def test_create_records_every_field_and_show_lists_them(initialized: Custody) -> None:
    created = initialized.json("incident", "create", "INC-1", *FULL)
    fields = created["fields"]
    assert fields == {
        "occurred_at": "2026-11-01T14:03:00-06:00", "location": "3400 W Cermak Rd", "agencies": ["ICE", "CBP"],
        "supervisor_name": "J. Doe", "supervisor_badge": "4471", "credentials": "refused",
        "use_of_force": "taser deployed", "detentions": 2, "injuries": "abrasions", "ems_summoned": True,
        "aid_rendered": True, "violations": ["720 ILCS 5/12-3", "720 ILCS 5/12-6"], "violation_categories": ["battery"], "report_number": "RD-JH123456",
        "note": "filed by unit 1234",
    }
    assert initialized.json("incident", "show", "INC-1")["fields"] == fields
    listed = initialized.json("incident", "list")
    assert [i["incident"] for i in listed] == ["INC-1"]
    [event] = initialized.json("log")
    assert event["action"] == "incident-created" and event["subject"] == {"incident": "INC-1"}
    again = initialized("incident", "create", "INC-1", "--location", "x")
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_amend_names_the_fields_changed_and_why(initialized: Custody) -> None:
    initialized("incident", "create", "INC-2", "--supervisor-badge", "4471", "--location", "Cermak")
    missing_reason = initialized("incident", "amend", "INC-2", "--supervisor-badge", "4417")
    assert missing_reason.exit_code == 2 and "--reason" in missing_reason.stderr
    amended = initialized.json("incident", "amend", "INC-2", "--supervisor-badge", "4417", "--reason", "badge misread")
    assert amended["fields"]["supervisor_badge"] == "4417" and amended["fields"]["location"] == "Cermak"
    event = initialized.json("log")[-1]
    assert event["action"] == "incident-amended"
    assert event["details"] == {"changes": {"supervisor_badge": {"from": "4471", "to": "4417"}}, "reason": "badge misread"}
    shown = initialized.json("incident", "show", "INC-2")
    assert [h["action"] for h in shown["history"]] == ["incident-created", "incident-amended"]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--occurred-at", "2026-11-01"], "--occurred-at"),
        (["--occurred-at", "2026-11-01T14:03:00"], "--occurred-at"),
        (["--credentials", "maybe"], "--credentials"),
        (["--location", ""], "--location"),
        (["--detentions", "-1"], "--detentions"),
    ],
)
def test_invalid_values_exit_2_naming_the_field_and_record_nothing(initialized: Custody, args: list[str], names: str) -> None:
    result = initialized("incident", "create", "INC-BAD", *args)
    assert result.exit_code == 2
    assert names in result.stderr
    assert initialized.json("log") == []


def test_unknown_incident_is_refused_before_anything_is_read(initialized: Custody, tmp_path: Path) -> None:
    [clip] = _files(tmp_path, 1)
    result = initialized("ingest", str(clip), "--incident", "NOPE")
    assert result.exit_code == 2 and "NOPE" in result.stderr and "--incident" in result.stderr
    assert initialized.json("log") == []
    assert list(_store(initialized).list("evidence/")) == []
    initialized("ingest", str(clip))
    digest = initialized.json("log")[0]["subject"]["evidence"]
    linked = initialized("link", digest[:10], "--incident", "NOPE")
    assert linked.exit_code == 2 and "NOPE" in linked.stderr
    assert _actions(initialized) == ["ingested"]


def test_ingest_links_with_camera_and_officer_and_a_flagged_incident_flags(initialized: Custody, tmp_path: Path) -> None:
    initialized("incident", "create", "INC-3", "--use-of-force", "baton strike")
    records = _ingest(initialized, *_files(tmp_path, 2), extra=("--incident", "INC-3", "--camera", "SN-0042", "--officer", "10231"))
    shown = initialized.json("incident", "show", "INC-3")
    assert {e["blake3"] for e in shown["evidence"]} == {r["blake3"] for r in records}
    assert all(e["camera"] == "SN-0042" and e["officer"] == "10231" for e in shown["evidence"])
    assert shown["flagged_because"] == ["use of force"]
    for record in records:
        events = initialized.json("log", record["blake3"][:12])
        assert [e["action"] for e in events] == ["ingested", "linked", "retention-extended"]
        flagged = events[2]["details"]
        assert flagged["category"] == "flagged" and flagged["previous_category"] == "unflagged"
        until = _utc(flagged["until"])
        assert abs((until - (datetime.now(timezone.utc) + timedelta(days=730))).total_seconds()) < 300
        info = _store(initialized).stat(f"evidence/{record['blake3']}")
        assert info.retention is not None and abs((info.retention.until - until).total_seconds()) < 2


def test_linking_later_and_a_referral_flag_existing_evidence(initialized: Custody, tmp_path: Path) -> None:
    initialized("incident", "create", "INC-4", "--location", "Pilsen")
    [record] = _ingest(initialized, *_files(tmp_path, 1))
    assert initialized("link", record["blake3"][:10], "--incident", "INC-4", "--camera", "SN-1").exit_code == 0
    assert _actions(initialized) == ["incident-created", "ingested", "linked"]
    referred = initialized.json("incident", "refer", "INC-4", "--to", "Cook County State's Attorney", "--reference", "SAO-1", "--felony")
    assert referred["referrals"][0]["felony"] is True and referred["flagged_because"] == ["referred for prosecution"]
    assert _actions(initialized)[-2:] == ["incident-referred", "retention-extended"]


def test_categories_list_their_source_and_agency_categories(initialized: Custody) -> None:
    (initialized.home / "config.toml").write_text(
        '[retention.categories.internal-affairs]\ndays = 1825\nstarts = "flagging"\nafter = "review"\nsource = "CPD G08-01"\n'
    )
    categories = {c["name"]: c for c in initialized.json("retention", "categories")}
    assert categories["unflagged"]["days"] == 90 and categories["unflagged"]["after"] == "destroy"
    assert "50 ILCS 706/10-20" in categories["unflagged"]["source"]
    assert categories["flagged"]["days"] == 730 and categories["flagged"]["starts"] == "flagging"
    assert categories["proceeding"]["legal_hold"] is True
    assert categories["internal-affairs"]["days"] == 1825 and categories["internal-affairs"]["source"] == "CPD G08-01"


def test_retention_only_lengthens(initialized: Custody, tmp_path: Path) -> None:
    (initialized.home / "config.toml").write_text('[retention.categories.short]\ndays = 30\nstarts = "ingest"\n')
    [record] = _ingest(initialized, *_files(tmp_path, 1))
    key = f"evidence/{record['blake3']}"
    before = _store(initialized).stat(key).retention
    refused = initialized("retention", "set", record["blake3"][:10], "--category", "short")
    assert refused.exit_code == 4 and "shorten" in refused.stderr
    assert _store(initialized).stat(key).retention == before
    assert _actions(initialized) == ["ingested", "refused"]
    flagged = initialized.json("retention", "flag", record["blake3"][:10], "--reason", "complaint filed")
    assert flagged[0]["category"] == "flagged"
    after = _store(initialized).stat(key).retention
    assert after is not None and before is not None and after.until > before.until + timedelta(days=600)
    report = initialized.json("ledger", "verify")
    assert report["latest_checkpoint"] == report["events"], "the flag is sealed in a WORM checkpoint"
    assert initialized.json("retention", "flag", record["blake3"][:10], "--reason", "again") == []
    back = initialized("retention", "set", record["blake3"][:10], "--category", "unflagged")
    assert back.exit_code == 4
    assert _store(initialized).stat(key).retention == after


def test_holds_are_placed_in_the_store_follow_the_incident_and_release_cleanly(initialized: Custody, tmp_path: Path) -> None:
    initialized("incident", "create", "INC-5", "--location", "Little Village")
    first = _ingest(initialized, *_files(tmp_path, 2, "a"), extra=("--incident", "INC-5"))
    placed = initialized.json("hold", "place", "SAO-26-1", "--authority", "Cook County SAO", "--reason", "felony review", "--incident", "INC-5")
    assert placed["active"] is True and len(placed["objects"]) == 2
    store = _store(initialized)
    assert all(store.stat(f"evidence/{r['blake3']}").legal_hold for r in first)
    later = _ingest(initialized, *_files(tmp_path, 1, "b"), extra=("--incident", "INC-5"))
    assert store.stat(f"evidence/{later[0]['blake3']}").legal_hold is True
    logged = initialized.json("log", later[0]["blake3"][:12])
    assert [e["action"] for e in logged] == ["ingested", "linked", "hold-inherited"]
    placings = [e["seq"] for e in initialized.json("log") if e["action"] == "hold-placed"]
    assert logged[2]["details"]["incident"] == "INC-5" and logged[2]["details"]["inherits"] == min(placings)
    other = initialized.json("hold", "place", "LIT-7", "--authority", "civil court", "--reason", "litigation", first[0]["blake3"][:10])
    assert other["objects"] == [first[0]["blake3"]]
    released = initialized.json("hold", "release", "SAO-26-1", "--authority", "order of 2027-03-02", "--reason", "case closed")
    assert released["active"] is False
    assert store.stat(f"evidence/{first[0]['blake3']}").legal_hold is True, "LIT-7 still holds it"
    assert store.stat(f"evidence/{first[1]['blake3']}").legal_hold is False
    assert store.stat(f"evidence/{later[0]['blake3']}").legal_hold is False
    holds = {h["name"]: h for h in initialized.json("hold", "list")}
    assert holds["SAO-26-1"]["active"] is False and holds["LIT-7"]["active"] is True
    shown = initialized.json("show", first[0]["blake3"][:10])
    assert shown["holds"] == ["LIT-7"] and shown["legal_hold"] is True and shown["incidents"] == ["INC-5"]


def test_dispose_destroys_only_expired_unflagged_unheld_evidence(initialized: Custody, tmp_path: Path) -> None:
    (initialized.home / "config.toml").write_text('[retention.categories.unflagged]\ndays = 0\nseconds = 2\n')
    records = _ingest(initialized, *_files(tmp_path, 3))
    plain, held, flagged = (r["blake3"] for r in records)
    assert initialized("hold", "place", "H1", "--authority", "court", "--reason", "r", held[:10]).exit_code == 0
    assert initialized("retention", "flag", flagged[:10], "--reason", "complaint").exit_code == 0
    early = initialized.json("dispose", "--expired")
    assert early["objects"] == []
    time.sleep(3)
    dry = initialized.json("dispose", "--expired")
    assert [o["blake3"] for o in dry["objects"]] == [plain] and dry["confirmed"] is False
    assert (initialized.home / "store" / "objects" / "evidence" / plain).exists()
    done = initialized.json("dispose", "--expired", "--confirm")
    assert [o["blake3"] for o in done["objects"]] == [plain] and done["objects"][0]["done"] is True
    assert not (initialized.home / "store" / "objects" / "evidence" / plain).exists()
    for kept in (held, flagged):
        assert (initialized.home / "store" / "objects" / "evidence" / kept).exists()
    event = initialized.json("log", plain[:12])[-1]
    assert event["action"] == "disposed"
    assert event["details"]["blake3"] == plain and event["details"]["sha256"] == records[0]["sha256"]
    assert event["details"]["size"] == records[0]["size"]
    assert initialized.json("dispose", "--expired")["objects"] == []
    assert initialized("ledger", "verify").exit_code == 0
    verified = initialized("verify", plain[:12], "--json")
    assert verified.exit_code == 3
    assert json.loads(verified.stdout)[0]["findings"][0]["kind"] == "disposed"


def test_show_and_verify_record_who_looked(initialized: Custody, tmp_path: Path) -> None:
    [record] = _ingest(initialized, *_files(tmp_path, 1))
    initialized("show", record["blake3"][:10], env={"CUSTODY_ACTOR": "prosecutor-7"})
    initialized("verify", record["blake3"][:10], env={"CUSTODY_ACTOR": "auditor-2"})
    events = initialized.json("log")
    assert [(e["action"], e["actor"]) for e in events[1:]] == [("viewed", "prosecutor-7"), ("verified", "auditor-2")]
    assert events[2]["details"]["ok"] is True


def test_export_leaves_out_disposed_objects_and_refuses_to_name_one(initialized: Custody, tmp_path: Path) -> None:
    (initialized.home / "config.toml").write_text('[retention.categories.unflagged]\ndays = 0\nseconds = 2\n')
    initialized("incident", "create", "INC-D", "--location", "Pilsen")
    gone, kept = _ingest(initialized, *_files(tmp_path, 2, "exp"), extra=("--incident", "INC-D"))
    assert initialized("hold", "place", "KEEP", "--authority", "court", "--reason", "r", kept["blake3"][:12]).exit_code == 0
    time.sleep(3)
    assert [o["blake3"] for o in initialized.json("dispose", "--expired", "--confirm")["objects"]] == [gone["blake3"]]
    named = initialized("export", "--incident", "INC-D", "--out", str(tmp_path / "bag1"), gone["blake3"][:12])
    assert named.exit_code == 2 and "disposed of" in named.stderr
    assert not (tmp_path / "bag1").exists()
    result = initialized("export", "--incident", "INC-D", "--out", str(tmp_path / "bag2"), "--recipient", "SAO")
    assert result.exit_code == 0, result.output
    payload = sorted(p.read_bytes() for p in (tmp_path / "bag2" / "data").iterdir())
    assert payload == [Path(kept["path"]).read_bytes()]
    check = initialized("verify-package", str(tmp_path / "bag2"))
    assert check.exit_code == 0, check.output
    disposal = [e for e in initialized.json("log", "--json") if e["action"] == "disposed"]
    assert len(disposal) == 1
    assert f"event {disposal[0]['seq']}" in result.output and gone["blake3"][:16] in result.output
    report = (tmp_path / "bag2" / "report.html").read_text()
    section = report.split("Linked recordings no longer preserved", 1)[1].split("<h2>", 1)[0]
    flat = re.sub(r"<br>|\s", "", section)
    assert gone["blake3"] in flat and gone["sha256"] in flat and kept["blake3"] not in flat
    assert f"<td>{disposal[0]['seq']}</td>" in section
    again = initialized.json("export", "--incident", "INC-D", "--out", str(tmp_path / "bag3"), "--json")
    assert [(d["blake3"], d["seq"], d["sha256"]) for d in again["disposed"]] == [
        (gone["blake3"], disposal[0]["seq"], gone["sha256"])
    ]

"""Refused attempts are events: each refusal by role, enrollment, the two-person rule, a lock or
retention is one sealed ``refused`` event naming who, what and why, and nothing else changes.
Run on the local store and on a real Ceph RGW (Object Lock in COMPLIANCE mode)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from custody.evidence.ingest import Ingestor, Inspection
from custody.ledger.database import Ledger
from custody.ledger.signatures import FileKeySigner
from custody.settings import Settings
from storage.base import ObjectInfo, ObjectStore
from storage.url import open_store
from tests.cli.test_actors import PEOPLE, make_key
from tests.conftest import Custody

pytestmark = pytest.mark.integration

SHORT_RETENTION = '[retention.categories.unflagged]\ndays = 0\nseconds = 2\n'


@dataclass
class Office:
    """A ledger on one store, with one enrolled person of each role."""

    custody: Custody
    keys: dict[str, Path]
    store_url: str
    s3: tuple[Any, str] | None = None
    """An independent boto3 client and the bucket, on RGW."""

    def as_(self, name: str, *args: str, env: dict[str, str] | None = None) -> Any:
        return self.custody("--key", str(self.keys[name]), *args, env=env)

    def json_as(self, name: str, *args: str) -> Any:
        result = self.as_(name, *args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def events(self) -> list[dict[str, Any]]:
        return self.custody.json("log")  # type: ignore[no-any-return]

    def store(self) -> ObjectStore:
        return open_store(self.store_url)

    def stat(self, blake3: str) -> ObjectInfo:
        row = Ledger(f"sqlite:///{self.custody.home / 'custody.db'}").evidence_row(blake3)
        assert row is not None
        return self.store().stat(row["store_key"], row["version"])

    def fingerprint(self, name: str) -> str:
        return FileKeySigner.load(name, self.keys[name]).public_key.fingerprint

    def ingest(self, tmp_path: Path, *names: str) -> list[str]:
        paths = []
        for name in names:
            path = tmp_path / name
            path.write_bytes(f"{name} {time.time_ns()}".encode() * 64)
            paths.append(str(path))
        made = self.json_as("tech-1", "ingest", *paths)
        return [r["blake3"] for r in made["results"]] if "results" in made else [r["blake3"] for r in made]

    def one_refusal(self, before: list[dict[str, Any]]) -> dict[str, Any]:
        """The events added since ``before``: exactly one, a refused event, sealed."""
        after = self.events()
        assert after[: len(before)] == before, "no earlier event changed"
        added = after[len(before):]
        assert [e["action"] for e in added] == ["refused"], added
        report = self.custody.json("ledger", "verify")
        assert report["ok"] is True and report["latest_checkpoint"] == report["events"], "the refusal is sealed"
        return added[0]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("refusal-people")
    return {name: make_key(directory, name) for name in [*PEOPLE, "stranger"]}


@pytest.fixture(params=["local", "rgw"])
def office(request: pytest.FixtureRequest, custody: Custody, keys: dict[str, Path]) -> Office:
    init = ["init", "--admin", "admin-1", "--admin-key", str(keys["admin-1"])]
    s3 = None
    if request.param == "rgw":
        request.getfixturevalue("rgw_credentials")
        store_url = request.getfixturevalue("rgw_url")
        init += ["--store", store_url]
        s3 = (request.getfixturevalue("s3_admin"), request.getfixturevalue("rgw_bucket"))
    else:
        store_url = Settings.default_store_url(custody.home)
    made = custody(*init)
    assert made.exit_code == 0, made.output
    place = Office(custody, keys, store_url, s3)
    for name, role in PEOPLE.items():
        if name != "admin-1":
            place.json_as("admin-1", "actor", "enroll", name, "--role", role, "--key-file", f"{keys[name]}.pub")
    return place


def _short_retention(office: Office) -> None:
    config = office.custody.home / "config.toml"
    config.write_text((config.read_text() if config.exists() else "") + "\n" + SHORT_RETENTION)


def test_a_role_refusal_is_one_event_and_the_store_is_untouched(office: Office, tmp_path: Path) -> None:
    [digest] = office.ingest(tmp_path, "role.mp4")
    before, lock = office.events(), office.stat(digest).retention
    refused = office.as_("aud-1", "retention", "flag", digest[:12], "--reason", "complaint")
    assert refused.exit_code == 4 and "aud-1 (auditor) may not record 'retention-extended'" in refused.stderr
    event = office.one_refusal(before)
    assert (event["actor"], event["role"], event["subject"]) == ("aud-1", "auditor", {"evidence": digest})
    details = event["details"]
    assert (details["refused_by"], details["command"], details["key"]) == ("role", "custody retention flag", office.fingerprint("aud-1"))
    assert office.stat(digest).retention == lock, "the retention was not extended in the store"
    assert office.custody.json("actor", "signature", str(event["seq"]))["signer"] == "aud-1"


def test_self_approval_is_a_two_person_refusal(office: Office, tmp_path: Path) -> None:
    [digest] = office.ingest(tmp_path, "held.mp4")
    office.json_as("sup-1", "hold", "place", "SAO-2", "--authority", "court", "--reason", "review", digest[:12])
    asked = office.json_as("sup-1", "hold", "release", "SAO-2", "--authority", "order", "--reason", "closed")
    seq = asked["request"]["request"]
    before = office.events()
    own = office.as_("sup-1", "approve", str(seq))
    assert own.exit_code == 4 and "cannot approve it" in own.stderr
    event = office.one_refusal(before)
    assert (event["actor"], event["role"], event["subject"]) == ("sup-1", "supervisor", {})
    assert (event["details"]["refused_by"], event["details"]["target"]) == ("two-person", {"request": seq})
    assert office.stat(digest).legal_hold is True, "the hold is still on the stored object"
    text = office.custody("log").stdout
    assert f"refused (two-person): custody approve request {seq} by sup-1: sup-1 made request {seq}" in text


def test_shortening_retention_is_a_retention_refusal(office: Office, tmp_path: Path) -> None:
    config = office.custody.home / "config.toml"
    config.write_text((config.read_text() if config.exists() else "") + '\n[retention.categories.short]\ndays = 30\n')
    [digest] = office.ingest(tmp_path, "short.mp4")
    before, lock = office.events(), office.stat(digest).retention
    refused = office.as_("tech-1", "retention", "set", digest[:12], "--category", "short")
    assert refused.exit_code == 4 and "would shorten the retention" in refused.stderr
    event = office.one_refusal(before)
    assert (event["actor"], event["subject"], event["details"]["refused_by"]) == ("tech-1", {"evidence": digest}, "retention")
    assert office.stat(digest).retention == lock


def test_a_key_that_is_not_enrolled_is_an_enrollment_refusal(office: Office, tmp_path: Path) -> None:
    path = tmp_path / "stranger.mp4"
    path.write_bytes(b"stranger footage")
    before = office.events()
    refused = office.as_("stranger", "ingest", str(path), env={"CUSTODY_ACTOR": "mallory"})
    assert refused.exit_code == 4 and "is not enrolled in this ledger" in refused.stderr
    event = office.one_refusal(before)
    assert (event["actor"], event["details"]["refused_by"]) == ("mallory", "enrollment")
    assert event["details"]["target"] == {"key": office.fingerprint("stranger")}
    assert "key" not in event["details"], "no enrolled key acted"


def test_an_approved_disposal_refuses_what_is_held_or_retained_since(office: Office, tmp_path: Path) -> None:
    _short_retention(office)
    free, held, flagged = office.ingest(tmp_path, "free.mp4", "held.mp4", "flagged.mp4")
    time.sleep(3)
    asked = office.json_as("sup-1", "dispose", "--expired", "--confirm")
    assert {o["blake3"] for o in asked["objects"]} == {free, held, flagged}
    office.json_as("sup-1", "hold", "place", "LIT-3", "--authority", "court", "--reason", "subpoena", held[:12])
    office.json_as("tech-1", "retention", "flag", flagged[:12], "--reason", "complaint filed")
    locks = {digest: office.stat(digest) for digest in (held, flagged)}
    before = office.events()
    approved = office.as_("sup-2", "approve", str(asked["request"]["request"]), "--json")
    assert approved.exit_code == 4, approved.output
    outcome = json.loads(approved.stdout)["outcome"]
    assert [d["blake3"] for d in outcome["disposed"]] == [free]
    added = office.events()[len(before):]
    refusals = {e["subject"]["evidence"]: e for e in added if e["action"] == "refused"}
    assert sorted(e["action"] for e in added) == ["approved", "disposed", "refused", "refused"]
    assert {d: (e["actor"], e["details"]["refused_by"]) for d, e in refusals.items()} == {
        held: ("sup-2", "lock"), flagged: ("sup-2", "retention")}
    assert "under legal hold LIT-3" in refusals[held]["details"]["reason"]
    assert "runs until" in refusals[flagged]["details"]["reason"]
    assert {r["seq"] for r in outcome["refused"]} == {e["seq"] for e in refusals.values()}
    for digest, info in locks.items():
        assert office.stat(digest) == info, "the refused object is kept as it was"
    report = office.custody.json("ledger", "verify")
    assert report["ok"] is True and report["latest_checkpoint"] == report["events"]
    log = office.custody("log", held[:12]).stdout
    assert f"refused (lock): custody approve evidence {held[:16]}… by sup-2: {held}: not destroyed: it is under legal hold LIT-3" in log
    audit = office.as_("aud-1", "audit")
    assert audit.exit_code == 0, audit.output
    assert "refused attempts: 2 in the ledger (lock 1, retention 1;" in audit.stdout


def test_a_deletion_the_store_refuses_is_recorded_and_the_rest_of_the_disposal_stands(office: Office, tmp_path: Path) -> None:
    """An attachment locked in the store itself (a legal hold placed outside this tool): the
    store refuses its deletion; the recording is destroyed and recorded, the attachment kept,
    and the refusal is its own event."""
    _short_retention(office)
    clip = tmp_path / "packets.mp4"
    clip.write_bytes(os.urandom(5000))
    ledger = Ledger(f"sqlite:///{office.custody.home / 'custody.db'}")
    ingestor = Ingestor(ledger, office.store(), actor="dock-3", retention=timedelta(seconds=2),
                        inspector=lambda _path: Inspection({"container": "mp4"}, {"packets": b"pts=0 size=512 flags=K\n" * 40}))
    [result] = ingestor.run([str(clip)])
    digest = result.blake3
    key = f"packets/{digest}"
    attachment = office.store().stat(key)
    if office.s3 is not None:
        client, bucket = office.s3
        prefix = urlsplit(office.store_url).path.strip("/")
        client.put_object_legal_hold(Bucket=bucket, Key=f"{prefix}/{key}", VersionId=attachment.version,
                                     LegalHold={"Status": "ON"})
    else:
        office.store().set_legal_hold(key, attachment.version, True)
    time.sleep(3)
    asked = office.json_as("sup-1", "dispose", "--expired", "--confirm")
    before = office.events()
    approved = office.as_("sup-2", "approve", str(asked["request"]["request"]), "--json")
    assert approved.exit_code == 4, approved.output
    added = office.events()[len(before):]
    assert [e["action"] for e in added] == ["approved", "refused", "disposed"]
    refused, disposed = added[1], added[2]
    assert (refused["actor"], refused["subject"], refused["details"]["refused_by"]) == ("sup-2", {"evidence": digest}, "lock")
    assert refused["details"]["target"] == {"attachment": key}
    assert "legal hold" in refused["details"]["reason"]
    assert disposed["details"]["attachments_kept"] == [key]
    assert office.store().stat(key, attachment.version).legal_hold is True, "the attachment is still there"
    report = office.custody.json("ledger", "verify")
    assert report["ok"] is True and report["latest_checkpoint"] == report["events"]


def test_a_refusal_in_the_middle_of_a_batch_says_what_was_done_before_it(office: Office, tmp_path: Path) -> None:
    """The second object's lock in the store is later than the ledger knows (set outside this
    tool): flagging both extends the first, then the store refuses to shorten the second. The
    first change stays recorded, and the one refused event names it."""
    first, second = office.ingest(tmp_path, "batch-1.mp4", "batch-2.mp4")
    row = Ledger(f"sqlite:///{office.custody.home / 'custody.db'}").evidence_row(second)
    assert row is not None
    later = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1000)
    if office.s3 is not None:
        client, bucket = office.s3
        prefix = urlsplit(office.store_url).path.strip("/")
        client.put_object_retention(Bucket=bucket, Key=f"{prefix}/{row['store_key']}", VersionId=row["version"],
                                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later})
    else:
        office.store().extend_retention(row["store_key"], row["version"], later)
    before = office.events()
    refused = office.as_("tech-1", "retention", "flag", first[:12], second[:12], "--reason", "complaint")
    assert refused.exit_code == 4, refused.output
    added = office.events()[len(before):]
    assert [(e["action"], e["subject"]["evidence"]) for e in added] == [("retention-extended", first), ("refused", second)]
    details = added[1]["details"]
    assert (added[1]["actor"], details["refused_by"]) == ("tech-1", "retention")
    assert f"the 1 object(s) before it were changed and recorded ({first[:16]})" in details["reason"]
    assert office.stat(second).retention.until == later  # type: ignore[union-attr]
    report = office.custody.json("ledger", "verify")
    assert report["ok"] is True and report["latest_checkpoint"] == report["events"]


def test_a_second_first_administrator_is_a_recorded_refusal(office: Office) -> None:
    before = office.events()
    again = office.custody("init", "--admin", "mallory", "--admin-key", str(office.keys["stranger"]),
                           env={"CUSTODY_ACTOR": "mallory"})
    assert again.exit_code == 4 and "already has an administrator" in again.stderr
    event = office.one_refusal(before)
    assert (event["actor"], event["details"]["refused_by"], event["details"]["command"]) == ("mallory", "enrollment", "custody init")
    assert event["details"]["target"] == {"key": office.fingerprint("stranger")}
    assert [p["name"] for p in office.custody.json("actor", "list")] == list(PEOPLE)


@pytest.mark.parametrize("office", ["local"], indirect=True)  # the package is the same whatever the store
def test_a_package_carries_the_refusals_about_its_evidence_and_verifies(office: Office, tmp_path: Path) -> None:
    assert office.as_("tech-1", "incident", "create", "INC-R", "--location", "Pilsen").exit_code == 0
    clip = tmp_path / "pkg.mp4"
    clip.write_bytes(b"package footage" * 100)
    assert office.as_("tech-1", "ingest", str(clip), "--incident", "INC-R").exit_code == 0
    digest = office.events()[-1]["subject"]["evidence"]
    assert office.as_("aud-1", "retention", "flag", digest[:12], "--reason", "r").exit_code == 4
    out = tmp_path / "bag"
    made = office.as_("sup-1", "export", "--incident", "INC-R", "--out", str(out), "--recipient", "PD", "--no-contact-sheets")
    assert made.exit_code == 0, made.output
    carried = [json.loads(line) for line in (out / "custody" / "events.jsonl").read_text().splitlines()]
    assert [e["details"]["refused_by"] for e in carried if e["action"] == "refused"] == ["role"]
    checked = office.custody("verify-package", str(out), "--json")
    assert checked.exit_code == 0, checked.output
    report = (out / "report.html").read_text()
    assert "refused (role): custody retention flag evidence" in report and "by aud-1" in report


def test_one_person_disposal_records_the_deletion_the_store_refuses(initialized: Custody, tmp_path: Path) -> None:
    """Without enrolled people, 'dispose --expired --confirm' acts at once: the attachment the
    store keeps (a legal hold set outside this tool) is one refused event, exit 4."""
    (initialized.home / "config.toml").write_text(SHORT_RETENTION)
    clip = tmp_path / "alone.mp4"
    clip.write_bytes(os.urandom(4000))
    store = open_store(Settings.default_store_url(initialized.home))
    ledger = Ledger(f"sqlite:///{initialized.home / 'custody.db'}")
    [result] = Ingestor(ledger, store, actor="dock-3", retention=timedelta(seconds=2),
                        inspector=lambda _path: Inspection({}, {"packets": b"pts=0\n" * 10})).run([str(clip)])
    key = f"packets/{result.blake3}"
    store.set_legal_hold(key, store.stat(key).version, True)
    time.sleep(3)
    before = initialized.json("log")
    done = initialized("dispose", "--expired", "--confirm", "--json")
    assert done.exit_code == 4, done.output
    assert [r["refused_by"] for r in json.loads(done.stdout)["refused"]] == ["lock"]
    added = initialized.json("log")[len(before):]
    assert [(e["action"], e["actor"]) for e in added] == [("refused", "tech-0412"), ("disposed", "tech-0412")]
    assert added[0]["details"]["command"] == "custody dispose" and added[0]["details"]["target"] == {"attachment": key}
    assert store.stat(key).legal_hold is True


@pytest.mark.parametrize("office", ["local"], indirect=True)
def test_linking_to_a_held_incident_needs_a_role_that_inherits_holds(office: Office, tmp_path: Path) -> None:
    """Linking gives the object the incident's hold (``hold-inherited``, the technician's by the
    shipped roles): roles recorded without it refuse a technician's link to a held incident
    before the store or the ledger changes (a hold in the store that the ledger does not
    record), while linking to an incident with no hold goes on."""
    config = office.custody.home / "config.toml"
    config.write_text('[actors.roles.technician]\nactions = ["ingested", "linked", "incident-created"]\n')
    assert office.json_as("admin-1", "actor", "roles", "set")["recorded"] is True
    assert office.as_("tech-1", "incident", "create", "INC-H", "--location", "Pilsen").exit_code == 0
    assert office.as_("tech-1", "incident", "create", "INC-O", "--location", "Pilsen").exit_code == 0
    placed = office.as_("sup-1", "hold", "place", "SAO-H", "--authority", "SAO", "--reason", "felony review", "--incident", "INC-H")
    assert placed.exit_code == 0, placed.output
    [digest] = office.ingest(tmp_path, "late.mp4")
    before = office.events()
    refused = office.as_("tech-1", "link", digest[:12], "--incident", "INC-H")
    assert refused.exit_code == 4 and "tech-1 (technician) may not record 'hold-inherited'" in refused.stderr
    assert "incident INC-H is under legal hold SAO-H" in refused.stderr
    event = office.one_refusal(before)
    assert (event["actor"], event["subject"], event["details"]["refused_by"]) == (
        "tech-1", {"evidence": digest, "incident": "INC-H"}, "role")
    assert office.stat(digest).legal_hold is False, "nothing was placed in the store"
    late = tmp_path / "later.mp4"
    late.write_bytes(b"later footage" * 50)
    ingest = office.as_("tech-1", "ingest", str(late), "--incident", "INC-H")
    assert ingest.exit_code == 4 and "under legal hold SAO-H" in ingest.stderr
    assert office.events()[-1]["action"] == "refused"
    assert office.as_("tech-1", "link", digest[:12], "--incident", "INC-O").exit_code == 0
    assert office.as_("sup-1", "link", digest[:12], "--incident", "INC-H").exit_code == 0
    assert office.stat(digest).legal_hold is True
    assert office.custody.json("ledger", "verify")["ok"] is True

"""`custody audit` on the local store: what quick and full find, shards, rotation, the audited
event, metrics and exit codes.

Damage is done behind the tool's back, the way an operator with filesystem access could: bytes
changed in place, files removed, lock records edited, objects put through the store API without
an ingest. The expected digests are computed here independently with the ``blake3`` package.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import blake3
import pytest

import custody.audit.rehash as rehash_module
from custody.ledger.database import Ledger
from storage.base import Retention
from storage.local import LocalStore
from tests.conftest import Custody

KINDS = ["hold-mismatch", "ledger-corrupt", "mismatch", "missing", "staging-leftover", "store-not-enforcing", "unreadable",
         "unrecorded", "weak-retention"]


def _files(directory: Path, count: int, size: int = 4000) -> dict[str, bytes]:
    """``count`` files of distinct random bytes; returns BLAKE3 -> bytes."""
    directory.mkdir(exist_ok=True)
    made = {}
    for index in range(count):
        data = os.urandom(size + index)
        (directory / f"clip-{index:03d}.mp4").write_bytes(data)
        made[blake3.blake3(data).hexdigest()] = data
    return made


def _ingested(custody: Custody, tmp_path: Path, count: int) -> dict[str, bytes]:
    made = _files(tmp_path / "export", count)
    result = custody("ingest", str(tmp_path / "export"))
    assert result.exit_code == 0, result.output
    return made


def _audit(custody: Custody, *args: str) -> tuple[int, dict[str, Any]]:
    result = custody("audit", *args, "--json")
    assert result.exit_code in (0, 3), result.output
    return result.exit_code, json.loads(result.stdout)


def _events(custody: Custody, action: str | None = None) -> list[dict[str, Any]]:
    result = custody("log", "--json")
    assert result.exit_code == 0, result.output
    return [e for e in json.loads(result.stdout) if action is None or e["action"] == action]


def _object_path(custody: Custody, key: str) -> Path:
    return custody.home / "store" / "objects" / key


def _meta_path(custody: Custody, key: str) -> Path:
    return custody.home / "store" / "meta" / (key + ".jsonl")


def _flip_byte(path: Path, offset: int = 100) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.chmod(path, 0o444)


def _shard(digest: str, count: int) -> int:
    return int(digest[:16], 16) % count + 1


def _slot(digest: str, count: int) -> int:
    return int(digest[16:32], 16) % count


def test_quick_audit_of_an_intact_store_passes_and_records_exactly_what_it_checked(
    initialized: Custody, tmp_path: Path
) -> None:
    made = _ingested(initialized, tmp_path, 4)
    code, report = _audit(initialized)
    assert code == 0 and report["ok"] is True and report["findings"] == []
    assert report["level"] == "quick" and report["shard"] == "1/1" and report["rotation"] is None
    assert report["counts"] == {"objects": 4, "attachments": 0, "rehashed": 0, "bytes_hashed": 0, "disposed": 0,
                                "listed": report["counts"]["listed"], "unrecorded": 0, "in_flight": 0, "findings": 0}
    assert sorted(o["blake3"] for o in report["objects"]) == sorted(made)
    assert all(o["hashed"] is False and o["last_full_check"] is None for o in report["objects"])
    assert report["canary"]["enforced"] is True and report["worm"] == "program"
    assert report["ledger"]["ok"] is True and report["ledger"]["events"] == 4

    [event] = _events(initialized, "audited")
    assert event["seq"] == report["seq"] == 4 and event["subject"] == {}
    details = event["details"]
    assert details["level"] == "quick"
    assert details["shard"] == {"index": 1, "count": 1} and details["rotation"] is None
    assert details["through_seq"] == 4
    assert details["counts"]["objects"] == 4 and details["counts"]["rehashed"] == 0
    assert details["findings"] == [] and details["findings_by_kind"] == dict.fromkeys(KINDS, 0)
    assert details["rehashed"] == {"count": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    assert details["canary"]["enforced"] is True and len(details["canary"]["probes"]) == 3
    assert details["ledger"]["events"] == 4 and details["ledger"]["root"] == report["ledger"]["root"]
    # The audit's own event is sealed into a WORM checkpoint and the ledger still verifies.
    assert report["checkpoint"] == 5
    assert initialized("ledger", "verify").exit_code == 0

    human = initialized("audit")
    assert human.exit_code == 0, human.output
    assert "canary: locks enforced (by this program only)" in human.stdout
    assert human.stdout.splitlines()[-1] == "OK: nothing found (recorded as event 5)"


def test_a_flipped_byte_is_found_by_full_and_not_by_quick(initialized: Custody, tmp_path: Path) -> None:
    made = _ingested(initialized, tmp_path, 3)
    victim = sorted(made)[1]
    path = _object_path(initialized, f"evidence/{victim}")
    _flip_byte(path)
    altered = blake3.blake3(path.read_bytes()).hexdigest()
    assert altered != victim

    # quick reads no bytes: same size, same metadata, so it cannot see the change.
    code, quick = _audit(initialized)
    assert code == 0 and quick["findings"] == [], "quick is not supposed to read object bytes"

    code, full = _audit(initialized, "--level", "full")
    assert code == 3
    assert full["counts"]["rehashed"] == 3
    assert full["counts"]["bytes_hashed"] == sum(len(d) for d in made.values())
    [finding] = full["findings"]
    assert finding == {
        "kind": "mismatch", "subject": victim, "algorithm": "blake3", "expected": victim, "found": altered,
        "source": "content", "key": f"evidence/{victim}", "version": finding["version"],
        "message": finding["message"],
    }
    [quick_event, full_event] = _events(initialized, "audited")
    assert quick_event["details"]["findings"] == []
    assert full_event["details"]["level"] == "full"
    assert full_event["details"]["findings"] == [finding]
    assert full_event["details"]["findings_by_kind"]["mismatch"] == 1
    # A changed object was still read in full, so it counts as re-hashed (and failed).
    assert full_event["details"]["not_rehashed"] == []
    assert full_event["details"]["rehashed"]["count"] == 3


def test_a_removed_object_is_found_by_quick(initialized: Custody, tmp_path: Path) -> None:
    made = _ingested(initialized, tmp_path, 3)
    victim = sorted(made)[0]
    _object_path(initialized, f"evidence/{victim}").unlink()

    code, report = _audit(initialized)
    assert code == 3
    [finding] = report["findings"]
    assert (finding["kind"], finding["subject"], finding["key"]) == ("missing", victim, f"evidence/{victim}")
    row = Ledger(f"sqlite:///{initialized.home / 'custody.db'}").evidence_row(victim)
    assert row is not None and finding["version"] == row["version"]
    [event] = _events(initialized, "audited")
    assert event["details"]["findings"] == [finding]

    human = initialized("audit")
    assert human.exit_code == 3
    assert f"missing: {victim}: evidence/{victim} (version " in human.stdout
    assert human.stdout.splitlines()[-1].startswith("FINDINGS: 1 (recorded as event ")


def test_an_object_put_directly_into_the_store_is_unrecorded_until_it_is_ingested(
    initialized: Custody, tmp_path: Path
) -> None:
    _ingested(initialized, tmp_path, 2)
    stray = os.urandom(5000)
    digest = blake3.blake3(stray).hexdigest()
    LocalStore(initialized.home / "store").put(
        f"evidence/{digest}", io.BytesIO(stray), len(stray), sha256=hashlib.sha256(stray).hexdigest(),
        retention=Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(days=1)),
        metadata={"blake3": digest},
    )
    # Stored a moment ago: taken for an ingest in progress until it is older than the grace.
    code, report = _audit(initialized)
    assert code == 0 and [o["key"] for o in report["in_flight"]["objects"]] == [f"evidence/{digest}"]
    human = initialized("audit")
    assert human.exit_code == 0, human.output
    assert f"in flight: evidence/{digest} (stored 20" in human.stdout
    code, report = _audit(initialized, "--in-flight-grace", "0")
    assert code == 3
    [finding] = report["findings"]
    assert (finding["kind"], finding["subject"], finding["size"]) == ("unrecorded", f"evidence/{digest}", 5000)
    assert report["counts"]["unrecorded"] == 1 and report["counts"]["objects"] == 2

    # Ingesting the original records the stranded object; then nothing is unaccounted for.
    original = tmp_path / "stray.mp4"
    original.write_bytes(stray)
    assert initialized("ingest", str(original)).exit_code == 0
    code, report = _audit(initialized)
    assert code == 0 and report["counts"]["objects"] == 3


def _place_hold(custody: Custody, digest: str) -> None:
    """What a hold command does: the hold on the stored object, then the ledger event."""
    ledger = Ledger(f"sqlite:///{custody.home / 'custody.db'}")
    row = ledger.evidence_row(digest)
    assert row is not None
    LocalStore(custody.home / "store").set_legal_hold(row["store_key"], row["version"], True)
    ledger.append("hold-placed", actor="clerk", subject={"evidence": digest},
                  details={"hold": "case-26-CR-0193", "authority": "order 17", "reason": "trial"})


def test_a_legal_hold_removed_behind_the_tools_back_is_a_hold_mismatch(initialized: Custody, tmp_path: Path) -> None:
    made = _ingested(initialized, tmp_path, 2)
    held = sorted(made)[0]
    _place_hold(initialized, held)
    code, report = _audit(initialized)
    assert code == 0, report["findings"]

    with open(_meta_path(initialized, f"evidence/{held}"), "a") as handle:
        handle.write('{"op":"hold","on":false,"time":"2026-11-21T03:00:00Z"}\n')
    code, report = _audit(initialized)
    assert code == 3
    [finding] = report["findings"]
    assert (finding["kind"], finding["subject"], finding["expected"], finding["found"]) == (
        "hold-mismatch", held, "on", "off")


def test_a_shortened_or_weakened_retention_is_weak_retention(initialized: Custody, tmp_path: Path) -> None:
    made = _ingested(initialized, tmp_path, 2)
    first, second = sorted(made)
    for digest, change in ((first, {"retain_until": "2026-01-01T00:00:00Z"}), (second, {"mode": "GOVERNANCE"})):
        meta = _meta_path(initialized, f"evidence/{digest}")
        lines = meta.read_text().splitlines()
        record = json.loads(lines[0])
        record.update(change)
        meta.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    recorded = {e["subject"]["evidence"]: e["details"]["retention"]["until"] for e in _events(initialized, "ingested")}

    code, report = _audit(initialized)
    assert code == 3
    found = {f["subject"]: (f["kind"], f["expected"], f["found"]) for f in report["findings"]}
    assert found == {
        first: ("weak-retention", f"COMPLIANCE until {recorded[first]}", "COMPLIANCE until 2026-01-01T00:00:00Z"),
        second: ("weak-retention", f"COMPLIANCE until {recorded[second]}", f"GOVERNANCE until {recorded[second]}"),
    }


def test_a_tampered_ledger_is_found_by_quick(initialized: Custody, tmp_path: Path) -> None:
    made = _ingested(initialized, tmp_path, 2)
    victim = sorted(made)[0]
    db = sqlite3.connect(initialized.home / "custody.db")
    db.execute("DROP TRIGGER IF EXISTS events_no_update")
    details = db.execute("SELECT details FROM events WHERE subject_evidence = ?", (victim,)).fetchone()[0]
    db.execute("UPDATE events SET details = ? WHERE subject_evidence = ?",
               (details.replace(hashlib.sha256(made[victim]).hexdigest(), "0" * 64), victim))
    db.commit()
    db.close()

    code, report = _audit(initialized)
    assert code == 3
    kinds = {f["kind"] for f in report["findings"]}
    assert kinds == {"ledger-corrupt"}
    messages = [f["message"] for f in report["findings"]]
    assert any("content does not match its hash" in m for m in messages)
    assert any(m.startswith("the evidence table's sha256 differs from ingest event") for m in messages)
    assert report["ledger"]["ok"] is False


def test_shards_split_the_objects_exactly_once(initialized: Custody, tmp_path: Path) -> None:
    made = _ingested(initialized, tmp_path, 12)
    stray = b"unrecorded footage" * 50
    stray_digest = blake3.blake3(stray).hexdigest()
    LocalStore(initialized.home / "store").put(
        f"evidence/{stray_digest}", io.BytesIO(stray), len(stray), sha256=hashlib.sha256(stray).hexdigest(),
        retention=Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(days=1)),
    )
    seen: dict[int, set[str]] = {}
    unrecorded: dict[int, list[str]] = {}
    for index in (1, 2, 3):
        code, report = _audit(initialized, "--level", "full", "--shard", f"{index}/3", "--workers", "3",
                              "--in-flight-grace", "0s")
        assert report["shard"] == f"{index}/3"
        seen[index] = {o["blake3"] for o in report["objects"]}
        assert {o["blake3"] for o in report["objects"] if o["hashed"]} == seen[index]
        unrecorded[index] = [f["subject"] for f in report["findings"] if f["kind"] == "unrecorded"]
        assert code == (3 if unrecorded[index] else 0)
    for index in (1, 2, 3):
        assert seen[index] == {d for d in made if _shard(d, 3) == index}
    assert set.union(*seen.values()) == set(made) and sum(len(s) for s in seen.values()) == len(made)
    assert [u for u in unrecorded.values() if u] == [[f"evidence/{stray_digest}"]]
    assert unrecorded[_shard(stray_digest, 3)] == [f"evidence/{stray_digest}"]
    events = _events(initialized, "audited")
    assert [e["details"]["shard"] for e in events] == [{"index": i, "count": 3} for i in (1, 2, 3)]
    assert [e["details"]["counts"]["objects"] for e in events] == [len(seen[i]) for i in (1, 2, 3)]


def test_rotation_rehashes_every_object_once_in_n_runs_and_remembers_it_in_the_ledger(
    initialized: Custody, tmp_path: Path
) -> None:
    made = _ingested(initialized, tmp_path, 12)
    by_slot = {s: {d for d in made if _slot(d, 3) == s} for s in range(3)}
    victim = sorted(by_slot[2])[0]
    _flip_byte(_object_path(initialized, f"evidence/{victim}"))

    reports = []
    for _ in range(4):
        code, report = _audit(initialized, "--rotation", "3")
        reports.append(report)
        slot = report["rotation"]["slot"]
        hashed = {o["blake3"] for o in report["objects"] if o["hashed"]}
        assert hashed == by_slot[slot]
        assert report["counts"]["rehashed"] == len(by_slot[slot])
        assert len(report["objects"]) == len(made)
        assert code == (3 if victim in hashed else 0)
    assert [r["rotation"] for r in reports] == [{"n": 3, "slot": s} for s in (0, 1, 2, 0)]
    # The bytes changed in slot 2 were found by the run that covered slot 2, and only by it.
    assert [[f["subject"] for f in r["findings"]] for r in reports] == [[], [], [victim], []]

    # After three runs every object has been fully checked once, by the run of its slot.
    third = {o["blake3"]: o["last_full_check"] for o in reports[2]["objects"]}
    for slot, report in enumerate(reports[:3]):
        for digest in by_slot[slot]:
            assert third[digest] == {"seq": report["seq"], "time": report["finished"], "level": "quick"}
    assert reports[2]["full_checks"]["never"] == 0
    fourth = {o["blake3"]: o["last_full_check"]["seq"] for o in reports[3]["objects"]}
    assert {d for d, seq in fourth.items() if seq == reports[3]["seq"]} == by_slot[0]

    events = _events(initialized, "audited")
    for event, report in zip(events, reports):
        slot = report["rotation"]["slot"]
        expected = sorted(by_slot[slot])
        assert event["details"]["rotation"] == {"n": 3, "slot": slot}
        assert event["details"]["rehashed"] == {
            "count": len(expected), "sha256": hashlib.sha256("".join(d + "\n" for d in expected).encode()).hexdigest()}
        assert event["details"]["not_rehashed"] == []



def test_a_read_error_is_an_unreadable_finding_never_a_digest(
    initialized: Custody, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _ingested(initialized, tmp_path, 3)
    victim = sorted(made)[2]
    real = rehash_module.local_blake3

    def failing_disk(path: Any) -> str:
        if Path(path).name == victim:
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real(path)

    monkeypatch.setattr(rehash_module, "local_blake3", failing_disk)
    code, report = _audit(initialized, "--level", "full")
    assert code == 3
    [finding] = report["findings"]
    assert (finding["kind"], finding["subject"]) == ("unreadable", victim)
    assert "Input/output error" in finding["message"] and "found" not in finding
    assert {o["blake3"]: o["hashed"] for o in report["objects"]} == {d: d != victim for d in made}
    details = _events(initialized, "audited")[-1]["details"]
    assert details["not_rehashed"] == [victim] and details["rehashed"]["count"] == 2


def test_metrics_file_and_exit_5_when_the_store_is_unreachable(initialized: Custody, tmp_path: Path) -> None:
    made = _ingested(initialized, tmp_path, 3)
    metrics = tmp_path / "custody_audit.prom"
    ok = initialized("audit", "--level", "full", "--metrics", str(metrics))
    assert ok.exit_code == 0, ok.output
    values = _metrics(metrics)
    labels = '{shard="1/1",level="full"}'
    assert values["custody_audit_success" + labels] == 1
    assert values["custody_audit_objects_checked" + labels] == 3
    assert values["custody_audit_objects_rehashed" + labels] == 3
    assert values["custody_audit_bytes_hashed" + labels] == sum(len(d) for d in made.values())
    assert values['custody_audit_findings{shard="1/1",level="full",kind="mismatch"}'] == 0
    assert values["custody_audit_objects_never_fully_checked" + labels] == 0
    [event] = _events(initialized, "audited")
    finished = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
    assert values["custody_audit_last_run_timestamp_seconds" + labels] == pytest.approx(finished)
    assert values["custody_audit_last_success_timestamp_seconds" + labels] == pytest.approx(finished)
    assert "# TYPE custody_audit_findings gauge" in metrics.read_text()

    _flip_byte(_object_path(initialized, f"evidence/{sorted(made)[0]}"))
    failed = initialized("audit", "--level", "full", "--metrics", str(metrics))
    assert failed.exit_code == 3
    values = _metrics(metrics)
    assert values["custody_audit_success" + labels] == 0
    assert values['custody_audit_findings{shard="1/1",level="full",kind="mismatch"}'] == 1
    assert values["custody_audit_last_success_timestamp_seconds" + labels] == pytest.approx(finished)

    (initialized.home / "store").rename(tmp_path / "store-gone")
    before = len(_events(initialized))
    gone = initialized("audit", "--level", "full", "--metrics", str(metrics))
    assert gone.exit_code == 5, gone.output
    assert gone.stderr.startswith("custody: error: no local store at ")
    assert len(_events(initialized)) == before
    values = _metrics(metrics)
    assert values["custody_audit_success" + labels] == 0
    assert values["custody_audit_last_success_timestamp_seconds" + labels] == pytest.approx(finished)


def _metrics(path: Path) -> dict[str, float]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--level", "full", "--rotation", "3"), "choose one"),
        (("--shard", "4/3"), "K must be between 1 and N"),
        (("--shard", "two"), "write it as K/N"),
        (("--rotation", "0"), "0 is not in the range 1<=x<=1000000"),
    ],
)
def test_bad_options_are_usage_errors(initialized: Custody, args: tuple[str, ...], message: str) -> None:
    result = initialized("audit", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert _events(initialized) == []


def test_retained_attachments_are_checked_with_their_object(initialized: Custody, tmp_path: Path) -> None:
    from custody.evidence.ingest import Ingestor, Inspection

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(os.urandom(6000))
    digest = blake3.blake3(clip.read_bytes()).hexdigest()
    packets = b"pts=0 size=512 flags=K\n" * 40
    ledger = Ledger(f"sqlite:///{initialized.home / 'custody.db'}")
    store = LocalStore(initialized.home / "store")
    ingestor = Ingestor(ledger, store, actor="tech-0412",
                        inspector=lambda _path: Inspection({"container": "mp4"}, {"packets": packets}))
    [result] = ingestor.run([str(clip)])
    assert result.status == "recorded"
    key = f"packets/{digest}"

    code, report = _audit(initialized)
    assert code == 0 and report["counts"]["attachments"] == 1, report["findings"]
    _flip_byte(_object_path(initialized, key), offset=7)
    code, report = _audit(initialized)
    assert code == 0, "quick does not read attachment bytes either"
    code, report = _audit(initialized, "--level", "full")
    assert code == 3
    [finding] = report["findings"]
    assert (finding["kind"], finding["subject"], finding["key"], finding["algorithm"], finding["source"]) == (
        "mismatch", digest, key, "sha256", "content")
    assert finding["expected"] == hashlib.sha256(packets).hexdigest()
    assert finding["found"] == hashlib.sha256(_object_path(initialized, key).read_bytes()).hexdigest()

    _object_path(initialized, key).unlink()
    code, report = _audit(initialized)
    assert code == 3
    assert [(f["kind"], f["subject"], f["key"]) for f in report["findings"]] == [("missing", digest, key)]


def test_prehashed_digests_are_used_only_for_the_very_file_that_was_read(tmp_path: Path) -> None:
    first, second, broken = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    first.write_bytes(b"first" * 1000)
    second.write_bytes(b"second" * 1000)
    prehash = rehash_module.LocalPrehash([first, second, broken])
    assert prehash.take(first) == blake3.blake3(first.read_bytes()).hexdigest()
    assert prehash.take(tmp_path / "never-planned") is None
    with pytest.raises(FileNotFoundError):
        prehash.take(broken)
    # A file that changed after it was hashed is not taken from the early result.
    os.utime(second, ns=(1, 1))
    assert prehash.take(second) is None


def test_a_disposed_object_is_accounted_for_not_missing(initialized: Custody, tmp_path: Path) -> None:
    made = _ingested(initialized, tmp_path, 3)
    gone = sorted(made)[0]
    ledger = Ledger(f"sqlite:///{initialized.home / 'custody.db'}")
    row = ledger.evidence_row(gone)
    assert row is not None
    ledger.append("disposed", actor="records-officer", subject={"evidence": gone},
                  details={"blake3": gone, "store": {"key": row["store_key"], "version": row["version"]},
                           "reason": "retention expired"})
    _object_path(initialized, f"evidence/{gone}").unlink()

    code, report = _audit(initialized, "--level", "full")
    assert code == 0, report["findings"]
    assert report["counts"]["objects"] == 2 and report["counts"]["disposed"] == 1
    assert report["counts"]["rehashed"] == 2
    assert {o["blake3"]: o["disposed"] for o in report["objects"]} == {d: d == gone for d in made}

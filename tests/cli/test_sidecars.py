"""Sidecar files (a camera's metadata JSON, a vendor's audit trail) preserved and linked to the
recording they describe: by --sidecar rules at ingest and by ``custody link --sidecar``; shown
by ``custody show``; carried in packages next to the recording and verified like any file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import bagit
import blake3

from tests.conftest import Custody, require_tool

INCIDENT = "2026-1101-ICE-07"


def metadata_json(clip: Path, target: Path) -> Path:
    """A camera-like metadata sidecar: ffprobe's own JSON description of the clip."""
    done = subprocess.run([require_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format",
                           "-show_streams", str(clip)], capture_output=True, check=True)
    target.write_bytes(done.stdout)
    return target


def audit_csv(clip: Path, target: Path) -> Path:
    target.write_text(f"time,actor,action,file\r\n2026-11-01T15:00:00Z,vendor-sync,uploaded,{clip.name}\r\n"
                      f"2026-11-02T09:12:00Z,sgt-811,viewed,{clip.name}\r\n")
    return target


def b3(path: Path) -> str:
    return blake3.blake3(path.read_bytes()).hexdigest()


def records(result: Any) -> dict[str, dict[str, Any]]:
    return {Path(r["path"]).name: r for r in json.loads(result.stdout)}


def sidecar_events(custody: Custody) -> list[dict[str, Any]]:
    return [e for e in custody.json("log") if e["action"] == "sidecar-linked"]


def test_rules_at_ingest_preserve_and_link_sidecars_and_show_lists_them(initialized: Custody, clip_dir: Path) -> None:
    meta = metadata_json(clip_dir / "BWC-001.mp4", clip_dir / "BWC-001.json")
    audit = audit_csv(clip_dir / "BWC-001.mp4", clip_dir / "BWC-001_audit.csv")
    result = initialized("ingest", str(clip_dir / "BWC-001.mp4"), str(clip_dir / "BWC-002.mp4"),
                         "--sidecar", "{stem}.json", "--sidecar", "{stem}_audit.csv", "--json")
    assert result.exit_code == 0, result.output
    out = records(result)
    # the sidecars were not named on the command line: the rules found them next to the clip
    assert out["BWC-001.json"]["status"] == "recorded" and out["BWC-001.json"]["blake3"] == b3(meta)
    assert out["BWC-001_audit.csv"]["blake3"] == b3(audit)
    recording = b3(clip_dir / "BWC-001.mp4")
    assert out["BWC-001.json"]["sidecar_of"]["recording"] == recording
    assert out["BWC-001.json"]["sidecar_of"]["rule"] == "{stem}.json"
    assert "sidecar_of" not in out["BWC-002.mp4"]
    events = sidecar_events(initialized)
    assert out["BWC-001_audit.csv"]["sidecar_of"]["seq"] == events[1]["seq"]
    assert f"BWC-001.json: sidecar of {clip_dir / 'BWC-001.mp4'} (rule {{stem}}.json, event {events[0]['seq']})" in result.stderr
    assert [(e["subject"]["evidence"], e["details"]["sidecar"]["blake3"], e["details"]["rule"]) for e in events] == [
        (recording, b3(meta), "{stem}.json"), (recording, b3(audit), "{stem}_audit.csv")]
    assert events[0]["details"]["sidecar"]["name"] == "BWC-001.json" and events[0]["details"]["how"] == "rule"
    shown = initialized.json("show", recording[:12])
    assert [s["blake3"] for s in shown["sidecars"]] == [b3(meta), b3(audit)]
    assert shown["sidecars"][0]["size"] == meta.stat().st_size
    assert initialized.json("show", str(meta))["sidecar_of"][0]["blake3"] == recording
    assert initialized.json("show", str(clip_dir / "BWC-002.mp4"))["sidecars"] == []
    human = initialized("show", recording[:12])
    assert "sidecars:     2" in human.stdout and "rule {stem}.json" in human.stdout
    # ingesting the same folder again records acquisitions, not a second link
    again = initialized("ingest", str(clip_dir), "--sidecar", "{stem}.json", "--sidecar", "{stem}_audit.csv")
    assert again.exit_code == 0, again.output
    assert len(sidecar_events(initialized)) == 2


def test_a_sidecar_is_never_itself_a_recording_for_the_rules(initialized: Custody, clip_dir: Path) -> None:
    metadata_json(clip_dir / "BWC-001.mp4", clip_dir / "BWC-001.json")
    audit_csv(clip_dir / "BWC-001.mp4", clip_dir / "BWC-001_audit.csv")
    (clip_dir / "BWC-001_audit.json").write_text("{}")  # '{stem}.json' of the audit trail, itself a sidecar
    result = initialized("ingest", str(clip_dir), "--sidecar", "{stem}.json", "--sidecar", "{stem}_audit.csv")
    assert result.exit_code == 0, result.output
    pairs = {(e["subject"]["evidence"], e["details"]["sidecar"]["name"]) for e in sidecar_events(initialized)}
    recording = b3(clip_dir / "BWC-001.mp4")
    assert pairs == {(recording, "BWC-001.json"), (recording, "BWC-001_audit.csv")}


def test_link_sidecar_afterwards_preserves_the_file_first(initialized: Custody, clip_dir: Path, tmp_path: Path) -> None:
    assert initialized("ingest", str(clip_dir / "BWC-003.mp4")).exit_code == 0
    recording = b3(clip_dir / "BWC-003.mp4")
    audit = audit_csv(clip_dir / "BWC-003.mp4", tmp_path / "vendor audit trail.csv")
    result = initialized("link", "--sidecar", str(audit), "--to", recording[:10], "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert done["sidecar"] == b3(audit) and done["ingested"]["status"] == "recorded"
    log = initialized.json("log")
    assert [e["action"] for e in log][-2:] == ["ingested", "sidecar-linked"]
    assert log[-1]["details"]["how"] == "link" and log[-1]["details"]["sidecar"]["name"] == "vendor audit trail.csv"
    assert initialized.json("show", recording[:10])["sidecars"][0]["blake3"] == b3(audit)
    again = initialized("link", "--sidecar", b3(audit)[:12], "--to", recording[:10])
    assert again.exit_code == 0 and "already linked" in again.stdout
    assert len(sidecar_events(initialized)) == 1


def test_link_and_sidecar_input_errors(initialized: Custody, clip_dir: Path) -> None:
    assert initialized("ingest", str(clip_dir / "BWC-001.mp4")).exit_code == 0
    recording = b3(clip_dir / "BWC-001.mp4")
    missing = initialized("link", "--sidecar", str(clip_dir / "BWC-001.mp4"), "--to", str(clip_dir / "BWC-002.mp4"))
    assert missing.exit_code == 2 and "--to" in missing.stderr and "not a preserved object" in missing.stderr
    itself = initialized("link", "--sidecar", recording[:12], "--to", recording[:12])
    assert itself.exit_code == 2 and "its own sidecar" in itself.stderr
    half = initialized("link", "--sidecar", recording[:12])
    assert half.exit_code == 2 and "--to REF" in half.stderr
    for pattern in ("../{stem}.json", "{stem}/x.json", "{size}.json", "audit.pdf"):
        bad = initialized("ingest", str(clip_dir), "--sidecar", pattern)
        assert bad.exit_code == 2 and pattern in bad.stderr, (pattern, bad.output)
    assert len(initialized.json("log")) == 1


def test_sidecars_travel_in_the_package_next_to_the_recording_and_verify(initialized: Custody, clip_dir: Path,
                                                                         tmp_path: Path) -> None:
    meta = metadata_json(clip_dir / "BWC-001.mp4", clip_dir / "BWC-001.json")
    late = audit_csv(clip_dir / "BWC-001.mp4", tmp_path / "audit.csv")
    sums = subprocess.run([require_tool("sha256sum"), "BWC-001.mp4", "BWC-002.mp4"], cwd=clip_dir,
                          capture_output=True, text=True, check=True).stdout
    (clip_dir / "SHA256SUMS").write_text(sums)
    for args in (
        ["incident", "create", INCIDENT, "--occurred-at", "2026-11-01T14:03:00-06:00", "--agency", "ICE"],
        ["ingest", str(clip_dir / "BWC-001.mp4"), str(clip_dir / "BWC-002.mp4"), "--sidecar", "{stem}.json",
         "--incident", INCIDENT, "--camera", "SN-0042", "--expect", str(clip_dir / "SHA256SUMS")],
        ["link", "--sidecar", str(late), "--to", str(clip_dir / "BWC-001.mp4")],
    ):
        result = initialized(*args)
        assert result.exit_code == 0, (args, result.output)
    out = tmp_path / "pkg"
    result = initialized("export", "--incident", INCIDENT, "--out", str(out), "--no-contact-sheets", "--json")
    assert result.exit_code == 0, result.output
    items = {i["blake3"]: i for i in json.loads((out / "custody/items.json").read_text())}
    recording = items[b3(clip_dir / "BWC-001.mp4")]
    for sidecar in (meta, late):
        item = items[b3(sidecar)]
        assert item["sidecar_of"] == recording["blake3"]
        stem = Path(recording["file"]).stem
        assert Path(item["file"]).name.startswith(stem + ".sidecar-") and item["file"].endswith(sidecar.suffix)
        assert (out / item["file"]).read_bytes() == sidecar.read_bytes()
    assert bagit.Bag(str(out)).validate() is True
    # the manifest of the previous system travels too (linked with the clips), and the report
    # says what it declared and which file is whose sidecar
    manifest_item = items[b3(clip_dir / "SHA256SUMS")]
    assert (out / manifest_item["file"]).read_bytes() == (clip_dir / "SHA256SUMS").read_bytes()
    readme = (out / "README.txt").read_text()
    assert "and 2 sidecar file(s)" in readme and "<recording's name>.sidecar-<n>.<ext>" in readme
    report_html = (out / "report.html").read_text()
    assert f"sidecar of {Path(recording['file']).name}" in report_html
    assert "the previous system&#39;s SHA256 (SHA256SUMS line 1): MATCH" in report_html
    assert "linked to this recording by the rule {stem}.json" in report_html
    verified = initialized("verify-package", str(out), "--json")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["findings"] == []
    # a sidecar is checked like any other file: one changed byte is named
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    target = tampered / items[b3(late)]["file"]
    target.chmod(0o644)
    target.write_bytes(target.read_bytes().replace(b"sgt-811", b"sgt-812"))
    broken = initialized("verify-package", str(tampered), "--json")
    assert broken.exit_code == 3
    assert any(f["subject"] == items[b3(late)]["file"] for f in json.loads(broken.stdout)["findings"])


def test_a_disposed_sidecar_is_left_out_of_the_package(initialized: Custody, clip_dir: Path, tmp_path: Path) -> None:
    import time

    (initialized.home / "config.toml").write_text('[retention.categories.unflagged]\ndays = 0\nseconds = 2\n')
    audit = audit_csv(clip_dir / "BWC-001.mp4", tmp_path / "audit.csv")
    recording = b3(clip_dir / "BWC-001.mp4")
    for args in (
        ["incident", "create", "INC-S", "--location", "Pilsen"],
        ["ingest", str(clip_dir / "BWC-001.mp4"), "--incident", "INC-S"],
        ["hold", "place", "KEEP", "--authority", "court", "--reason", "r", recording[:12]],
        ["link", "--sidecar", str(audit), "--to", recording[:12]],
    ):
        result = initialized(*args)
        assert result.exit_code == 0, (args, result.output)
    time.sleep(3)
    disposed = initialized.json("dispose", "--expired", "--confirm")["objects"]
    assert [o["blake3"] for o in disposed] == [b3(audit)]
    out = tmp_path / "pkg"
    result = initialized("export", "--incident", "INC-S", "--out", str(out), "--no-contact-sheets", "--json")
    assert result.exit_code == 0, result.output
    assert [i["blake3"] for i in json.loads((out / "custody/items.json").read_text())] == [recording]
    assert initialized("verify-package", str(out)).exit_code == 0


def test_link_refuses_to_mix_a_sidecar_link_with_an_incident_link(initialized: Custody, clip_dir: Path) -> None:
    assert initialized("ingest", str(clip_dir / "BWC-001.mp4"), str(clip_dir / "BWC-002.mp4")).exit_code == 0
    one, two = b3(clip_dir / "BWC-001.mp4"), b3(clip_dir / "BWC-002.mp4")
    mixed = initialized("link", "--sidecar", two[:12], "--to", one[:12], "--camera", "SN-1")
    assert mixed.exit_code == 2 and "run them as two commands" in mixed.stderr
    assert initialized("incident", "create", "INC-J", "--location", "Pilsen").exit_code == 0
    linked = initialized("link", one[:12], "--incident", "INC-J", "--json")
    assert linked.exit_code == 0, linked.output
    done = json.loads(linked.stdout)
    assert done["blake3"] == one and done["incident"] == "INC-J"
    assert initialized.json("log")[done["seq"]]["action"] == "linked"
    assert not [e for e in initialized.json("log") if e["action"] == "sidecar-linked"]

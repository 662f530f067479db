"""custody ingest --expect: digests declared by the previous system, compared during the one read
and recorded in the ledger; real clips made with ffmpeg, real sha256sum/b3sum/md5sum output."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import blake3

from tests.conftest import Custody, make_clip, require_tool


def sums(tool: str, directory: Path, *names: str) -> str:
    done = subprocess.run([require_tool(tool), *names], cwd=directory, capture_output=True, text=True, check=True)
    return done.stdout


def by_name(result: Any) -> dict[str, dict[str, Any]]:
    return {Path(r["path"]).name: r for r in json.loads(result.stdout)}


def events_by_name(custody: Custody) -> dict[str, dict[str, Any]]:
    return {e["details"]["source"]["name"]: e for e in custody.json("log") if e["action"] in ("ingested", "acquired")}


CLIPS = ["BWC-001.mp4", "BWC-002.mp4", "BWC-003.mp4"]


def test_a_matching_sha256sum_manifest_is_recorded_in_every_event(initialized: Custody, clip_dir: Path) -> None:
    manifest = clip_dir / "SHA256SUMS"
    manifest.write_text(sums("sha256sum", clip_dir, *CLIPS))
    result = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--json")
    assert result.exit_code == 0, result.output
    out = by_name(result)
    manifest_sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
    events = events_by_name(initialized)
    for name in CLIPS:
        declared = out[name]["declared"]
        data = (clip_dir / name).read_bytes()
        assert declared["result"] == "match"
        assert declared["algorithm"] == "sha256" and declared["value"] == hashlib.sha256(data).hexdigest()
        assert declared["manifest"]["sha256"] == manifest_sha and declared["manifest"]["name"] == "SHA256SUMS"
        assert events[name]["details"]["declared"] == declared
    # the manifest is preserved in the same command, so a court can see what was declared
    own = out["SHA256SUMS"]
    assert own["status"] == "recorded" and own["blake3"] == blake3.blake3(manifest.read_bytes()).hexdigest()
    assert own["declared"]["result"] == "manifest" and own["declared"]["entries"] == 3
    assert own["declared"]["absent_count"] == 0
    assert events["SHA256SUMS"]["details"]["declared"]["result"] == "manifest"


def test_an_md5sum_mismatch_is_preserved_recorded_and_exits_3(initialized: Custody, clip_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "MD5SUMS"
    manifest.write_text(sums("md5sum", clip_dir, *CLIPS))
    make_clip(tmp_path / "other.mp4", tone=900, serial="SN-0009")
    shutil.copy(tmp_path / "other.mp4", clip_dir / "BWC-002.mp4")  # not the bytes the vendor declared
    result = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--expect-root", str(clip_dir), "--json")
    assert result.exit_code == 3, result.output
    out = by_name(result)
    changed = out["BWC-002.mp4"]
    assert changed["status"] == "recorded"  # preserved anyway: it is evidence
    declared = changed["declared"]
    assert declared["result"] == "mismatch" and declared["algorithm"] == "md5"
    assert declared["computed"] == hashlib.md5((clip_dir / "BWC-002.mp4").read_bytes()).hexdigest()
    assert declared["value"] != declared["computed"] and declared["line"] == 2
    assert out["BWC-001.mp4"]["declared"]["result"] == "match"
    assert "BWC-002.mp4: finding: MD5 declared in MD5SUMS line 2" in result.stderr
    events = events_by_name(initialized)
    assert events["BWC-002.mp4"]["details"]["declared"]["result"] == "mismatch"
    # the manifest lay outside the folder: it was added to the command and preserved too
    assert out["MD5SUMS"]["declared"]["result"] == "manifest"
    stored = initialized.json("show", out["BWC-002.mp4"]["blake3"][:12])
    assert stored["sha256"] == hashlib.sha256((clip_dir / "BWC-002.mp4").read_bytes()).hexdigest()
    assert stored["acquisitions"][0]["declared"]["result"] == "mismatch"
    shown = initialized("show", out["BWC-002.mp4"]["blake3"][:12])
    assert f"    the previous system's MD5 (MD5SUMS line 2): MISMATCH, declared {declared['value']}" \
        in shown.stdout


def test_listed_but_absent_and_present_but_unlisted_are_reported(initialized: Custody, clip_dir: Path) -> None:
    manifest = clip_dir / "clips.b3"
    manifest.write_text(sums("b3sum", clip_dir, *CLIPS))
    (clip_dir / "BWC-003.mp4").unlink()
    make_clip(clip_dir / "BWC-004.mp4", tone=1200, serial="SN-0004")
    result = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--json")
    assert result.exit_code == 3, result.output
    out = by_name(result)
    assert out["BWC-003.mp4"]["status"] == "absent" and "clips.b3 line 3" in out["BWC-003.mp4"]["reason"]
    assert out["BWC-004.mp4"]["status"] == "recorded" and out["BWC-004.mp4"]["declared"]["result"] == "not-listed"
    assert out["BWC-001.mp4"]["declared"]["algorithm"] == "blake3"
    assert out["BWC-001.mp4"]["declared"]["result"] == "match"
    assert "absent: " in result.stderr and "BWC-003.mp4" in result.stderr
    assert "BWC-004.mp4: not listed in clips.b3" in result.stderr
    own = events_by_name(initialized)["clips.b3"]["details"]["declared"]
    assert own["absent"] == ["BWC-003.mp4"] and own["absent_count"] == 1


def test_unlisted_files_alone_do_not_fail_the_command(initialized: Custody, clip_dir: Path) -> None:
    manifest = clip_dir / "SHA256SUMS"
    manifest.write_text(sums("sha256sum", clip_dir, "BWC-001.mp4"))
    result = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--json")
    assert result.exit_code == 0, result.output
    assert [by_name(result)[n]["declared"]["result"] for n in CLIPS] == ["match", "not-listed", "not-listed"]


def test_a_csv_with_custom_headers(initialized: Custody, clip_dir: Path) -> None:
    rows = [line.split("  ", 1) for line in sums("md5sum", clip_dir, *CLIPS).splitlines()]
    manifest = clip_dir / "audit-export.csv"
    manifest.write_text("Officer,File,MD5 Checksum\r\n" + "".join(f"10231,{n},{d.upper()}\r\n" for d, n in rows))
    result = initialized("ingest", str(clip_dir), "--expect", str(manifest),
                         "--expect-columns", "path=File,digest=MD5 Checksum", "--json")
    assert result.exit_code == 0, result.output
    out = by_name(result)
    assert [out[n]["declared"]["result"] for n in CLIPS] == ["match"] * 3
    assert out["BWC-003.mp4"]["declared"]["line"] == 4
    assert out["audit-export.csv"]["declared"]["manifest"]["format"] == "csv"


def test_a_hostile_manifest_stops_before_anything_is_read(initialized: Custody, clip_dir: Path) -> None:
    manifest = clip_dir / "SHA256SUMS"
    good = sums("sha256sum", clip_dir, *CLIPS)
    manifest.write_text(good + good.splitlines()[0].split()[0] + "  ../../etc/passwd\n")
    result = initialized("ingest", str(clip_dir), "--expect", str(manifest))
    assert result.exit_code == 2, result.output
    assert str(manifest) in result.stderr and "line 4: the path '../../etc/passwd'" in result.stderr
    assert initialized.json("log") == []


def test_expect_options_need_expect(initialized: Custody, clip_dir: Path) -> None:
    result = initialized("ingest", str(clip_dir), "--expect-algorithm", "md5")
    assert result.exit_code == 2 and "need --expect MANIFEST" in result.stderr


def test_bytes_already_preserved_get_the_comparison_in_their_acquisition_event(initialized: Custody, clip_dir: Path) -> None:
    assert initialized("ingest", str(clip_dir / "BWC-001.mp4")).exit_code == 0
    manifest = clip_dir / "SHA256SUMS"
    manifest.write_text(sums("sha256sum", clip_dir, *CLIPS))
    result = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--json")
    assert result.exit_code == 0, result.output
    assert by_name(result)["BWC-001.mp4"]["status"] == "already-stored"
    acquired = [e for e in initialized.json("log") if e["action"] == "acquired"]
    assert len(acquired) == 1 and acquired[0]["details"]["declared"]["result"] == "match"
    assert acquired[0]["details"]["declared"]["value"] == hashlib.sha256((clip_dir / "BWC-001.mp4").read_bytes()).hexdigest()


def test_a_manifest_made_from_another_folder_gets_a_hint_then_matches_with_expect_root(initialized: Custody,
                                                                                       clip_dir: Path) -> None:
    manifest = clip_dir / "SHA256SUMS"
    manifest.write_text(sums("sha256sum", clip_dir.parent, *(f"{clip_dir.name}/{n}" for n in CLIPS)))
    wrong = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--json")
    assert wrong.exit_code == 3
    absent = sorted(r["path"] for r in json.loads(wrong.stdout) if r["status"] == "absent")
    assert absent == [str(clip_dir / clip_dir.name / n) for n in CLIPS]
    assert "give that folder with --expect-root" in wrong.stderr
    right = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--expect-root", str(clip_dir.parent), "--json")
    assert right.exit_code == 0, right.output
    assert [by_name(right)[n]["declared"]["result"] for n in CLIPS] == ["match"] * 3
    assert "--expect-root" not in right.stderr


def test_a_manifest_that_lists_itself_is_the_manifest_not_a_mismatch(initialized: Custody, clip_dir: Path) -> None:
    (clip_dir / "SHA256SUMS").write_text("from an earlier run\n")
    # made again over the old one: the glob names it, and it is hashed while being rewritten
    subprocess.run("sha256sum * > SHA256SUMS", shell=True, cwd=clip_dir, check=True)
    assert "SHA256SUMS" in (clip_dir / "SHA256SUMS").read_text()
    result = initialized("ingest", str(clip_dir), "--expect", str(clip_dir / "SHA256SUMS"), "--json")
    assert result.exit_code == 0, result.output
    out = by_name(result)
    assert out["SHA256SUMS"]["declared"]["result"] == "manifest"
    assert [out[n]["declared"]["result"] for n in CLIPS] == ["match"] * 3


def test_control_characters_in_manifest_names_never_reach_the_terminal(initialized: Custody, clip_dir: Path) -> None:
    listed = sums("sha256sum", clip_dir, *CLIPS)
    evil = "\x1b]0;owned\x07\x1b[2Jgone.mp4"
    (clip_dir / "SHA256SUMS").write_text(listed + f"{'ab' * 32}  {evil}\n")
    result = initialized("ingest", str(clip_dir), "--expect", str(clip_dir / "SHA256SUMS"))
    assert result.exit_code == 3, result.output
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "gone.mp4" in result.stderr and "SHA256SUMS line 4" in result.stderr
    as_json = initialized("ingest", str(clip_dir), "--expect", str(clip_dir / "SHA256SUMS"), "--json")
    absent = [r for r in json.loads(as_json.stdout) if r["status"] == "absent"]
    assert [Path(r["path"]).name for r in absent] == [evil]  # --json keeps the exact name


def test_a_folder_given_through_a_symbolic_link_still_matches(initialized: Custody, clip_dir: Path, tmp_path: Path) -> None:
    manifest = clip_dir / "SHA256SUMS"
    manifest.write_text(sums("sha256sum", clip_dir, *CLIPS))
    alias = tmp_path / "dock-mount"
    alias.symlink_to(clip_dir)
    result = initialized("ingest", str(alias), "--expect", str(manifest), "--json")
    assert result.exit_code == 0, result.output
    assert [by_name(result)[n]["declared"]["result"] for n in CLIPS] == ["match"] * 3


def test_a_windows_export_csv_matches_with_expect_windows_paths(initialized: Custody, clip_dir: Path) -> None:
    (clip_dir / "cam1").mkdir()
    for name in CLIPS:
        (clip_dir / name).rename(clip_dir / "cam1" / name)
    rows = [line.split("  ", 1) for line in sums("sha256sum", clip_dir / "cam1", *CLIPS).splitlines()]
    manifest = clip_dir / "export.csv"
    manifest.write_text("Path,SHA256\r\n" + "".join(f"cam1\\{n},{d.upper()}\r\n" for d, n in rows))
    plain = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--json")
    assert plain.exit_code == 3  # read as POSIX names, nothing matches: absent, and the clips not listed
    assert [r["status"] for r in json.loads(plain.stdout)].count("absent") == 3
    windows = initialized("ingest", str(clip_dir), "--expect", str(manifest), "--expect-windows-paths", "--json")
    assert windows.exit_code == 0, windows.output
    assert [by_name(windows)[n]["declared"]["result"] for n in CLIPS] == ["match"] * 3
    assert by_name(windows)["BWC-002.mp4"]["declared"]["path"] == "cam1/BWC-002.mp4"

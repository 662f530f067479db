"""verify-package on packages received from outside, which may be hostile: nothing outside the
bag is read, no link is followed, no special file is opened, every read is bounded, and any
malformed or ambiguous content is a finding (exit 3), never a traceback or a hang."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.ledger import checkpoint as notes
from custody.package.verify import verify_package
from tests.conftest import Custody

INCIDENT = "2026-1101-ICE-09"


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory, clips: list[Path]) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("hostile")
    custody = Custody(base / "home", {"CUSTODY_HOME": str(base / "home"), "CUSTODY_ACTOR": "tech-0412",
                                      "CUSTODY_DB": "", "CUSTODY_STORE": ""})
    for args in (["init"], ["incident", "create", INCIDENT, "--agency", "ICE", "--location", "Main St"],
                 ["ingest", str(clips[0]), str(clips[1]), "--incident", INCIDENT, "--camera", "SN-0042"],
                 ["export", "--incident", INCIDENT, "--out", str(base / "pkg"), "--no-contact-sheets"]):
        result = custody(*args)
        assert result.exit_code == 0, (args, result.output)
    key = notes.Verifier.from_text((base / "home" / "verifier.key").read_text().strip())
    return {"custody": custody, "bag": base / "pkg", "key": key}


@pytest.fixture
def bag(original: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "pkg"
    shutil.copytree(original["bag"], copy)
    return copy


def run(original: dict[str, Any], bag: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = original["custody"]("verify-package", str(bag), "--json", *args)
    assert result.exit_code in (0, 3), (result.exit_code, result.output)
    return result.exit_code, json.loads(result.stdout), result.stderr


def kinds(report: dict[str, Any], subject: str) -> list[str]:
    return [f["kind"] for f in report["findings"] if f["subject"] == subject]


def test_a_fifo_as_a_tag_file_is_named_and_never_opened(original: dict[str, Any], bag: Path) -> None:
    (bag / "custody/incident.json").unlink()
    os.mkfifo(bag / "custody/incident.json")
    started = time.monotonic()
    code, report, _ = run(original, bag)
    assert time.monotonic() - started < 60
    assert code == 3 and "unsafe" in kinds(report, "custody/incident.json")
    assert any("FIFO" in f["message"] for f in report["findings"] if f["subject"] == "custody/incident.json")


def test_the_verifier_key_linked_to_the_zero_device_is_not_read(original: dict[str, Any], bag: Path) -> None:
    (bag / "custody/verifier.key").unlink()
    (bag / "custody/verifier.key").symlink_to("/dev/zero")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    report = verify_package(bag)
    assert time.monotonic() - started < 60
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000, "memory grew by more than 200 MB"
    assert not report.ok
    [finding] = [f for f in report.findings if f.subject == "custody/verifier.key" and f.kind == "unsafe"]
    assert "symbolic link" in finding.message


def test_data_linked_to_a_system_folder_is_not_walked(original: dict[str, Any], bag: Path) -> None:
    shutil.rmtree(bag / "data")
    (bag / "data").symlink_to("/usr/share")
    started = time.monotonic()
    code, report, _ = run(original, bag)
    assert time.monotonic() - started < 60
    assert code == 3 and "unsafe" in kinds(report, "data")
    assert report["payload_files"] == 0
    assert not any(f["subject"].startswith("data/") and f["kind"] in ("unexpected", "mismatch") for f in report["findings"])


def test_a_tag_file_linked_to_a_system_file_is_not_read(original: dict[str, Any], bag: Path) -> None:
    (bag / "report.html").unlink()
    (bag / "report.html").symlink_to("/etc/passwd")
    (bag / "custody/items.json").unlink()
    (bag / "custody/items.json").symlink_to("/etc/hostname")
    code, report, _ = run(original, bag)
    assert code == 3
    for name in ("report.html", "custody/items.json"):
        assert kinds(report, name) and set(kinds(report, name)) <= {"unsafe", "missing"}, report["findings"]
    assert "root:" not in json.dumps(report)


def test_a_link_inside_a_folder_and_a_linked_folder_are_not_followed(original: dict[str, Any], bag: Path) -> None:
    shutil.move(bag / "custody/proofs", bag.parent / "proofs-elsewhere")
    (bag / "custody/proofs").symlink_to(bag.parent / "proofs-elsewhere")
    code, report, _ = run(original, bag)
    assert code == 3 and "unsafe" in kinds(report, "custody/proofs")
    assert report["proved_events"] == 0


@pytest.mark.parametrize("content", [
    '{"a": 1}', "[1, 2]", '[{"file": 5}]', '[{"file": "data/x", "ingest_seq": "7", "packets": 12}]',
    "[" * 100_000 + "]" * 100_000, '{"a": 1, "a": 2}', "\xff\xfe not utf-8", "",
])
def test_malformed_items_json_is_a_finding(original: dict[str, Any], bag: Path, content: str) -> None:
    (bag / "custody/items.json").write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    code, report, stderr = run(original, bag)
    assert code == 3 and "Traceback" not in stderr
    assert kinds(report, "custody/items.json")


@pytest.mark.parametrize("line", [
    '{"seq": "1", "leaf": 5}', '{"seq": 1, "leaf": "{\\"seq\\": 1, \\"subject\\": 5}"}', "[]", "7",
    '{"seq": 99999999999999999999999, "leaf": "{}"}', '{"seq": 0, "leaf": "' + "[" * 5000 + "]" * 5000 + '"}',
    '{"seq": 0, "seq": 1, "leaf": "{}"}', '{"seq": 0, "leaf": "{\\"seq\\":0,\\"subject\\":{\\"evidence\\":[1]}}"}',
])
def test_malformed_event_lines_are_findings(original: dict[str, Any], bag: Path, line: str) -> None:
    path = bag / "custody/events.jsonl"
    path.write_text(path.read_text() + line + "\n")
    code, report, stderr = run(original, bag)
    assert code == 3 and "Traceback" not in stderr
    assert any(f["subject"].startswith("custody/events.jsonl") for f in report["findings"])


def test_a_path_listed_twice_in_a_manifest_is_ambiguous_and_named(original: dict[str, Any], bag: Path) -> None:
    manifest = bag / "manifest-sha256.txt"
    first = manifest.read_text().splitlines()[0]
    digest, name = first.split("  ", 1)
    manifest.write_text(manifest.read_text() + f"{'0' * 64}  {name}\n")
    code, report, _ = run(original, bag)
    assert code == 3
    [finding] = [f for f in report["findings"] if f["subject"] == "manifest-sha256.txt" and "second time" in f["message"]]
    assert "ambiguous" in finding["message"]


def test_export_help_says_one_thing_about_an_existing_out(original: dict[str, Any]) -> None:
    text = " ".join(original["custody"]("export", "--help").stdout.split())
    assert "a new path, or an existing empty directory" in text
    assert "must not exist" not in text
    assert "an --out that exists and is not an empty directory" in text


# ---------------------------------------------------------------------------------------------
# property: any change to a package is found, and nothing raises


def _files(bag: Path) -> list[Path]:
    return sorted(p for p in bag.rglob("*") if p.is_file())


MUTATIONS = ("flip", "truncate", "append", "delete", "add", "duplicate-line", "json", "swap", "link")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=st.sampled_from(MUTATIONS), pick=st.integers(min_value=0, max_value=10_000),
       junk=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                         max_leaves=12))
def test_a_mutated_package_never_raises_and_is_never_verified(original: dict[str, Any], tmp_path_factory: pytest.TempPathFactory,
                                                              mutation: str, pick: int, junk: Any) -> None:
    bag = tmp_path_factory.mktemp("mutated") / "pkg"
    shutil.copytree(original["bag"], bag)
    files = _files(bag)
    target = files[pick % len(files)]
    data = target.read_bytes()
    rng = random.Random(pick)
    if mutation == "flip" and data:
        index = rng.randrange(len(data))
        target.write_bytes(data[:index] + bytes([data[index] ^ (1 << rng.randrange(8))]) + data[index + 1:])
    elif mutation == "truncate":
        target.write_bytes(data[: rng.randrange(len(data))] if data else b"x")
    elif mutation == "append":
        target.write_bytes(data + b"\n")
    elif mutation == "delete":
        target.unlink()
    elif mutation == "add":
        (target.parent / f"added-{pick}.txt").write_bytes(b"added\n")
    elif mutation == "duplicate-line":
        lines = data.split(b"\n")
        lines.insert(rng.randrange(len(lines)), lines[rng.randrange(len(lines))] or b"x")
        target.write_bytes(b"\n".join(lines))
    elif mutation == "json":
        target.write_text(json.dumps(junk))
        if target.read_bytes() == data:
            target.write_bytes(data + b" ")
    elif mutation == "swap":
        other = files[(pick + 1) % len(files)]
        other_data = other.read_bytes()
        if other_data == data:
            target.write_bytes(data + b"\0")
        else:
            target.write_bytes(other_data)
            other.write_bytes(data)
    elif mutation == "link":
        target.unlink()
        target.symlink_to(files[(pick + 1) % len(files)] if pick % 2 else "/etc/hostname")
    else:
        target.write_bytes(b"x")
    report = verify_package(bag, original["key"])
    assert not report.ok, (mutation, target.relative_to(bag))
    assert report.findings

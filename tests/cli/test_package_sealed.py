"""Packages that cannot be edited, cannot leave anything out, and explain themselves (sealed,
complete, consistent), and a README.txt whose every command runs verbatim on stock tools."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.ledger.consistency import parse_consistency
from custody.package.readme import RUN_BLOCK
from tests.conftest import Custody, require_tool

INCIDENT = "2026-1101-ICE-07"
RECIPIENT = "Cook County SAO, Felony Review"


def _custody(home: Path) -> Custody:
    return Custody(home, {"CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "tech-0412", "CUSTODY_DB": "", "CUSTODY_STORE": ""})


def _run(custody: Custody, *args: str) -> Any:
    result = custody(*args)
    assert result.exit_code == 0, (args, result.output)
    return result


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory, clips: list[Path]) -> dict[str, Any]:
    """One ledger, three clips linked to an incident, and two packages for one recipient (a
    first with two clips, a later one after the third clip was linked)."""
    base = tmp_path_factory.mktemp("sealed")
    custody = _custody(base / "home")
    _run(custody, "init")
    _run(custody, "incident", "create", INCIDENT, "--occurred-at", "2026-11-01T14:03:00-06:00", "--agency", "ICE",
         "--location", "2400 S Western Ave", "--use-of-force", "taser deployed")
    _run(custody, "ingest", str(clips[0]), str(clips[1]), "--incident", INCIDENT, "--camera", "SN-0042")
    fork_base = base / "fork-home"
    shutil.copytree(custody.home, fork_base)
    first = json.loads(_run(custody, "export", "--incident", INCIDENT, "--out", str(base / "first"), "--recipient",
                            RECIPIENT, "--no-contact-sheets", "--json").stdout)
    _run(custody, "ingest", str(clips[2]), "--incident", INCIDENT, "--camera", "SN-0043")
    second = json.loads(_run(custody, "export", "--incident", INCIDENT, "--out", str(base / "second"), "--recipient",
                             RECIPIENT, "--organization", "Chicago Police Department", "--json").stdout)
    return {"custody": custody, "base": base, "first": base / "first", "second": base / "second",
            "first_result": first, "second_result": second, "fork_base": fork_base, "clips": clips}


@pytest.fixture
def bag(ledger: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "pkg"
    shutil.copytree(ledger["second"], copy)
    return copy


def verify(custody: Custody, bag: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = custody("verify-package", str(bag), "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def trusted(ledger: dict[str, Any], bag: Path, *args: str) -> tuple[int, dict[str, Any]]:
    custody = ledger["custody"]
    return verify(custody, bag, "--trust-key", str(custody.home / "verifier.key"), *args)


def findings(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["subject"], []).append(finding)
    return found


def refresh_tag_manifests(bag: Path) -> None:
    """What a careful forger does after editing tag files: recompute the tag manifests."""
    for algorithm in ("sha256", "sha512"):
        manifest = bag / f"tagmanifest-{algorithm}.txt"
        lines = []
        for line in manifest.read_text().splitlines():
            _, name = line.split("  ", 1)
            lines.append(f"{hashlib.new(algorithm, (bag / name).read_bytes()).hexdigest()}  {name}\n")
        manifest.write_text("".join(lines))


def events_of(bag: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bag / "custody/events.jsonl").read_text().splitlines()]


def items_of(bag: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((bag / "custody/items.json").read_text())
    return items


# ---------------------------------------------------------------------------------------------
# sealed


def test_both_packages_verify_sealed_and_complete(ledger: dict[str, Any]) -> None:
    for name in ("first", "second"):
        code, report = trusted(ledger, ledger[name])
        assert code == 0, report["findings"]
        assert report["sealed"] is True and report["complete"] is True and report["excluded"] == []
        assert [c["check"] for c in report["checks"] if c["check"] in ("package seal", "completeness")] == [
            "package seal", "completeness"]


def _edit_json(path: Path, change: Any) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _edit_text(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


EDITS = {
    "custody/incident.json (location)": ("custody/incident.json",
                                         lambda b: _edit_json(b / "custody/incident.json",
                                                              lambda v: v["fields"].update(location="elsewhere"))),
    "custody/incident.json (use of force)": ("custody/incident.json",
                                             lambda b: _edit_json(b / "custody/incident.json",
                                                                  lambda v: v["fields"].update(use_of_force="none"))),
    "custody/items.json (camera)": ("custody/items.json",
                                    lambda b: _edit_json(b / "custody/items.json", lambda v: v[0].update(camera="SN-9999"))),
    "custody/items.json (officer)": ("custody/items.json",
                                     lambda b: _edit_json(b / "custody/items.json", lambda v: v[0].update(officer="77777"))),
    "custody/items.json (original name)": ("custody/items.json",
                                           lambda b: _edit_json(b / "custody/items.json",
                                                                lambda v: v[0].update(original_name="other.mp4"))),
    "report.html (incident id)": ("report.html", lambda b: _edit_text(b / "report.html", INCIDENT, "2026-1101-ICE-08")),
    "report.html (text)": ("report.html", lambda b: _edit_text(b / "report.html", "Custody timeline", "Timeline")),
    "hash-certification.txt": ("hash-certification.txt",
                               lambda b: _edit_text(b / "hash-certification.txt", "I declare", "I do not declare")),
    "README.txt": ("README.txt", lambda b: _edit_text(b / "README.txt", "python3 -I", "python3")),
    "contact sheet": ("", lambda b: None),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_every_edit_of_a_file_is_named_even_with_the_tag_manifests_recomputed(ledger: dict[str, Any], bag: Path,
                                                                              edit: str) -> None:
    name, change = EDITS[edit]
    if edit == "contact sheet":
        name = next(i["contact_sheet"] for i in items_of(bag) if i["contact_sheet"])
        (bag / name).write_bytes((bag / name).read_bytes()[:-16] + b"\0" * 16)
    else:
        change(bag)
    refresh_tag_manifests(bag)
    code, report = trusted(ledger, bag)
    assert code == 3
    found = findings(report)
    assert name in found, report["findings"]
    assert any(f["kind"] == "mismatch" and "sealed" in f["message"] for f in found[name])
    assert report["sealed"] is False


def test_an_added_or_removed_tag_file_is_named(ledger: dict[str, Any], bag: Path) -> None:
    (bag / "custody/extra-note.txt").write_text("trust me\n")
    (bag / "hash-certification.txt").unlink()
    code, report = trusted(ledger, bag)
    assert code == 3
    found = findings(report)
    assert any("added after the package was sealed" in f["message"] for f in found["custody/extra-note.txt"])
    assert any(f["kind"] == "missing" for f in found["hash-certification.txt"])


def test_an_edited_or_resigned_seal_is_named(ledger: dict[str, Any], bag: Path) -> None:
    seal = bag / "custody/seal.txt"
    original = seal.read_text()
    _edit_text(seal, "file ", "file 0", )
    code, report = trusted(ledger, bag)
    assert code == 3 and findings(report)["custody/seal.txt"][0]["kind"] == "bad-signature"
    body = original[: original.rfind("\n\n") + 1]
    name = body.split("\n")[3].split(" ")[1]
    signer_text, _ = notes.generate_signer(name)
    seal.write_text(notes.sign_note(body, [notes.Signer.from_text(signer_text)]))
    code, report = trusted(ledger, bag)
    assert code == 3 and findings(report)["custody/seal.txt"][0]["kind"] == "bad-signature"
    other = notes.sign_note("unrelated\n", [notes.Signer.from_text(signer_text)])
    seal.write_text(original + other[other.rfind("\n\n") + 2:])
    code, report = trusted(ledger, bag)
    assert code == 3 and "other keys" in findings(report)["custody/seal.txt"][0]["message"]


# ---------------------------------------------------------------------------------------------
# complete


def test_dropping_a_recording_with_everything_about_it_is_named(ledger: dict[str, Any], bag: Path) -> None:
    """The omission that passed every verifier: one recording with its events, proofs, packet
    list, sheet and its entries in items.json and incident.json."""
    items = items_of(bag)
    dropped = items[-1]
    blake3 = dropped["blake3"]
    (bag / dropped["file"]).unlink()
    for extra in ("packets", "contact_sheet"):
        if dropped.get(extra):
            (bag / dropped[extra]).unlink()
    (bag / "custody/items.json").write_text(json.dumps(items[:-1], indent=2, sort_keys=True) + "\n")
    kept, gone = [], []
    for event in events_of(bag):
        (gone if event["subject"].get("evidence") == blake3 else kept).append(event)
    assert gone
    for event in gone:
        (bag / event["proof"]).unlink()
    (bag / "custody/events.jsonl").write_text("".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
                                                      for e in kept))
    gone_seqs = {e["seq"] for e in gone}
    _edit_json(bag / "custody/incident.json",
               lambda v: v.update(history=[h for h in v["history"] if h["seq"] not in gone_seqs],
                                  evidence=[x for x in v["evidence"] if x.get("blake3") != blake3]))
    for algorithm in ("sha256", "sha512"):
        manifest = bag / f"manifest-{algorithm}.txt"
        manifest.write_text("".join(l + "\n" for l in manifest.read_text().splitlines() if dropped["file"] not in l))
    sums = bag / "blake3sums.txt"
    sums.write_text("".join(l + "\n" for l in sums.read_text().splitlines() if dropped["file"] not in l))
    info = bag / "bag-info.txt"
    total = sum(p.stat().st_size for p in (bag / "data").iterdir())
    info.write_text("".join(f"Payload-Oxum: {total}.{len(items) - 1}\n" if l.startswith("Payload-Oxum") else l + "\n"
                            for l in info.read_text().splitlines()))
    lines = [l for l in (bag / "tagmanifest-sha256.txt").read_text().splitlines()
             if (bag / l.split("  ", 1)[1]).exists()]
    (bag / "tagmanifest-sha256.txt").write_text("".join(l + "\n" for l in lines))
    lines = [l for l in (bag / "tagmanifest-sha512.txt").read_text().splitlines()
             if (bag / l.split("  ", 1)[1]).exists()]
    (bag / "tagmanifest-sha512.txt").write_text("".join(l + "\n" for l in lines))
    refresh_tag_manifests(bag)
    code, report = verify(ledger["custody"], bag)
    assert code == 3
    found = findings(report)
    assert f"object {blake3}" in found
    assert "linked to incident" in found[f"object {blake3}"][0]["message"]
    for seq in gone_seqs:
        assert f"event {seq}" in found, sorted(found)
    assert report["complete"] is False


def test_a_package_whose_checkpoint_does_not_end_with_its_prepared_event_is_incomplete(
        ledger: dict[str, Any], bag: Path) -> None:
    custody = ledger["custody"]
    events = events_of(bag)
    last = events[-1]
    assert last["action"] == "export-prepared" and last["details"]["package"] == ledger["second_result"]["package_id"]
    assert [e for e in last["details"]["events"]] == [[e["seq"], e["hash"]] for e in events[:-1]]
    assert ledger["second_result"]["prepared_seq"] == last["seq"]
    (bag / last["proof"]).unlink()
    (bag / "custody/events.jsonl").write_text("".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
                                                      for e in events[:-1]))
    code, report = verify(custody, bag)
    assert code == 3
    [incomplete] = [f for f in report["findings"] if f["kind"] == "incomplete"]
    assert "is not this package's proved 'export-prepared' event" in incomplete["message"]


def test_a_selected_export_names_what_the_sender_left_out(ledger: dict[str, Any], tmp_path: Path) -> None:
    custody = ledger["custody"]
    one = items_of(ledger["second"])[0]["blake3"]
    result = _run(custody, "export", "--incident", INCIDENT, "--out", str(tmp_path / "some"), one[:12],
                  "--no-contact-sheets", "--json")
    excluded = json.loads(result.stdout)["excluded"]
    assert len(excluded) == 2 and one not in excluded
    code, report = verify(custody, tmp_path / "some")
    assert code == 0 and sorted(report["excluded"]) == sorted(excluded)
    plain = custody("verify-package", str(tmp_path / "some"))
    assert plain.exit_code == 0
    for blake3 in excluded:
        assert f"object {blake3} is linked to the incident but the sender left it out" in plain.stderr


# ---------------------------------------------------------------------------------------------
# consistent


def test_ledger_consistency_prints_a_proof_that_verifies(ledger: dict[str, Any]) -> None:
    custody = ledger["custody"]
    first, second = ledger["first_result"]["checkpoint"], ledger["second_result"]["checkpoint"]
    result = _run(custody, "ledger", "consistency", str(first["size"]), str(second["size"]))
    proof = parse_consistency(result.stdout)
    assert proof.old_size == first["size"] and proof.proof
    checkpoint, _ = notes.open_checkpoint(proof.checkpoint, [notes.Verifier.from_text(
        (custody.home / "verifier.key").read_text().strip())])
    assert checkpoint.size == second["size"] and checkpoint.root.hex() == second["root"]
    assert tree.verify_consistency(first["size"], second["size"], bytes.fromhex(first["root"]),
                                   checkpoint.root, list(proof.proof))
    assert not tree.verify_consistency(first["size"], second["size"], hashlib.sha256(b"x").digest(),
                                       checkpoint.root, list(proof.proof))
    latest = _run(custody, "ledger", "consistency", str(first["size"]))
    assert parse_consistency(latest.stdout).old_size == first["size"]
    bad = custody("ledger", "consistency", str(second["size"] + 100))
    assert bad.exit_code == 2 and "OLD_SIZE" in bad.stderr
    bad = custody("ledger", "consistency", "1", str(second["size"] + 1))
    assert bad.exit_code == 2 and "no checkpoint of that size" in bad.stderr


def test_the_later_package_carries_the_proof_from_the_earlier_and_verify_checks_it(ledger: dict[str, Any]) -> None:
    first, second = ledger["first_result"]["checkpoint"], ledger["second_result"]["checkpoint"]
    proof = parse_consistency((ledger["second"] / "custody/consistency.txt").read_text())
    assert proof.old_size == first["size"]
    assert proof.checkpoint == (ledger["second"] / "custody/checkpoint.txt").read_text()
    assert not (ledger["first"] / "custody/consistency.txt").exists()
    code, report = trusted(ledger, ledger["second"], "--previous", str(ledger["first"]))
    assert code == 0, report["findings"]
    assert report["previous"] == {"path": str(ledger["first"]), "size": first["size"], "root": first["root"],
                                  "consistent": True}
    assert second["size"] > first["size"]


def test_a_package_from_a_forked_ledger_is_refused(ledger: dict[str, Any], tmp_path: Path) -> None:
    """The fork: a copy of the ledger (same key) taken before the first package, which then
    records something else at the same positions and exports to the same recipient."""
    fork = _custody(tmp_path / "fork")
    shutil.copytree(ledger["fork_base"], fork.home)
    _run(fork, "incident", "amend", INCIDENT, "--location", "a different place", "--reason", "rewritten history")
    forked = tmp_path / "forked"
    _run(fork, "export", "--incident", INCIDENT, "--out", str(forked), "--recipient", RECIPIENT, "--no-contact-sheets")
    custody = ledger["custody"]
    code, report = verify(custody, forked, "--trust-key", str(custody.home / "verifier.key"))
    assert code == 0, report["findings"]
    code, report = trusted(ledger, ledger["second"], "--previous", str(forked))
    assert code == 3
    [finding] = [f for f in report["findings"] if f["kind"] in ("inconsistent", "missing")]
    assert finding["subject"] in ("custody/checkpoint.txt", "custody/consistency.txt")
    assert report["previous"]["consistent"] is False
    plain = custody("verify-package", str(ledger["second"]), "--previous", str(forked))
    assert plain.exit_code == 3 and "NOT VERIFIED" in plain.stdout


# ---------------------------------------------------------------------------------------------
# README.txt, executed verbatim


def _blocks(bag: Path) -> list[tuple[str, str]]:
    text = (bag / "README.txt").read_text(encoding="utf-8")
    return [(m["what"], m["commands"]) for m in RUN_BLOCK.finditer(text)]


def _tree(bag: Path) -> dict[str, str]:
    return {p.relative_to(bag).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(bag.rglob("*")) if p.is_file()}


def _stock_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


def _execute(bag: Path, commands: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", "-c", commands], cwd=bag, env=env, capture_output=True, text=True, timeout=300)


def _tools_env(env: dict[str, str]) -> dict[str, str]:
    """The stock environment plus this project's venv, for the blocks that need custody or bagit.py."""
    return {**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}


def _require_stock_python() -> None:
    require_tool("b3sum")
    done = subprocess.run(["/usr/bin/python3", "-I", "-c", "import cryptography"], capture_output=True)
    if done.returncode != 0:
        message = "python3-cryptography is not installed for /usr/bin/python3 (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_every_readme_command_runs_verbatim_on_a_fresh_copy(ledger: dict[str, Any], tmp_path: Path) -> None:
    _require_stock_python()
    fresh = tmp_path / "received"
    shutil.copytree(ledger["second"], fresh)
    blocks = _blocks(fresh)
    assert [what.split(".")[0] for what, _ in blocks] == ["1", "3", "4", "5", "6"]
    before = _tree(fresh)
    env = _stock_env(tmp_path)
    outputs = {}
    for what, commands in blocks:
        needs_tools = "needs" in what
        done = _execute(fresh, commands, _tools_env(env) if needs_tools else env)
        assert done.returncode == 0, (what, done.stdout, done.stderr)
        outputs[what.split(".")[0]] = done.stdout
    assert outputs["1"].strip().endswith("OK: every file matches manifest-sha256, manifest-sha512, blake3sums and "
                                         "the tag manifests")
    assert "OK: sealed by the ledger's key;" in outputs["3"] and "FAILED" not in outputs["3"]
    assert outputs["4"].startswith("SKIPPED")
    assert "OK: bagit.py validates the bag" in outputs["5"]
    assert "verified: every file and every custody claim" in outputs["6"]
    previous = _execute(fresh, blocks[2][1], {**env, "PREVIOUS": str(ledger["first"])})
    assert previous.returncode == 0, previous.stderr
    assert previous.stdout.startswith("OK: the tree of") and "extends the earlier package's tree" in previous.stdout
    assert _tree(fresh) == before, "README.txt's commands wrote inside the package"


TAMPERINGS = {
    "payload byte": lambda b: _flip(next((b / "data").iterdir())),
    "items.json camera, tag manifests recomputed": lambda b: (
        _edit_json(b / "custody/items.json", lambda v: v[0].update(camera="SN-9999")), refresh_tag_manifests(b)),
    "event actor": lambda b: _forge_event(b),
    "recording dropped": lambda b: _drop_listed_event(b),
}


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _forge_event(bag: Path) -> None:
    path = bag / "custody/events.jsonl"
    path.write_text(path.read_text().replace('"actor":"tech-0412"', '"actor":"tech-0413"', 1))


def _drop_listed_event(bag: Path) -> None:
    events = events_of(bag)
    victim = next(e for e in events if e["action"] == "linked")
    (bag / victim["proof"]).unlink()
    (bag / "custody/events.jsonl").write_text("".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
                                                      for e in events if e["seq"] != victim["seq"]))


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_the_readme_commands_show_tampering(ledger: dict[str, Any], tmp_path: Path, tampering: str) -> None:
    _require_stock_python()
    fresh = tmp_path / "received"
    shutil.copytree(ledger["second"], fresh)
    TAMPERINGS[tampering](fresh)
    env = _stock_env(tmp_path)
    failed = []
    for what, commands in _blocks(fresh):
        if "needs" in what:
            continue
        done = _execute(fresh, commands, env)
        if done.returncode != 0:
            assert "FAILED" in done.stdout + done.stderr, (what, done.stdout, done.stderr)
            failed.append(what.split(".")[0])
    assert failed, f"no README.txt check showed the tampering ({tampering})"
    if tampering == "payload byte":
        assert "1" in failed
    else:
        assert "3" in failed


def test_the_certification_says_exactly_where_the_lock_is_enforced(ledger: dict[str, Any]) -> None:
    text = " ".join((ledger["second"] / "hash-certification.txt").read_text().split())
    assert "Where the lock is enforced: by this program only." in text
    assert "an administrator of the machine could delete or alter the stored files" in text
    assert "write-once storage" not in text
    from custody.package.certification import lock_statement

    server = " ".join(lock_statement("server").split())
    assert "by the storage server itself (S3 Object Lock). In COMPLIANCE mode" in server


def _refresh_payload_manifests(bag: Path) -> None:
    """What a forger who also edits payload files does: recompute the payload manifests and
    blake3sums.txt, then the tag manifests."""
    import blake3

    for manifest, digest in (("manifest-sha256.txt", lambda d: hashlib.sha256(d).hexdigest()),
                             ("manifest-sha512.txt", lambda d: hashlib.sha512(d).hexdigest()),
                             ("blake3sums.txt", lambda d: blake3.blake3(d).hexdigest())):
        path = bag / manifest
        lines = []
        for line in path.read_text().splitlines():
            _, name = line.split("  ", 1)
            lines.append(f"{digest((bag / name).read_bytes())}  {name}\n")
        path.write_text("".join(lines))
    refresh_tag_manifests(bag)


def test_a_one_byte_edit_of_any_file_is_named_with_every_manifest_recomputed(ledger: dict[str, Any],
                                                                             tmp_path: Path) -> None:
    """Every file of the package, one at a time: a byte appended (for JSON and text, a space that
    changes no value), every manifest a careful forger can recompute recomputed; with
    --trust-key the edit is a finding naming that file."""
    recomputable = {"manifest-sha256.txt", "manifest-sha512.txt", "blake3sums.txt", "tagmanifest-sha256.txt",
                    "tagmanifest-sha512.txt"}
    names = sorted(p.relative_to(ledger["second"]).as_posix() for p in ledger["second"].rglob("*") if p.is_file())
    assert len(names) > 15
    missed = []
    for number, name in enumerate(names):
        if name in recomputable:
            continue
        copy = tmp_path / f"pkg-{number}"
        shutil.copytree(ledger["second"], copy)
        with (copy / name).open("ab") as handle:
            handle.write(b" ")
        _refresh_payload_manifests(copy)
        code, report = trusted(ledger, copy)
        if code != 3 or name not in findings(report):
            missed.append((name, code, [(f["subject"], f["kind"]) for f in report["findings"]]))
        shutil.rmtree(copy)
    assert missed == []


def test_the_readme_python_makes_explicit_checks_and_reads_utf8(ledger: dict[str, Any]) -> None:
    """'python3 -O' strips assert statements, so a check made with one would pass an edited
    event; and text opened without an encoding depends on the reader's locale."""
    import ast
    import re

    text = (ledger["second"] / "README.txt").read_text(encoding="utf-8")
    programs = re.findall(r"python3 -I -[^\n]*<<'EOF'[^\n]*\n(.*?)\nEOF\n", text, re.S)
    assert len(programs) >= 2
    for program in programs:
        parsed = ast.parse(program)
        assert not [n for n in ast.walk(parsed) if isinstance(n, ast.Assert)], program[:200]
        assert "sys.exit(" in program or "raise SystemExit" in program, program[:200]
        for call in ast.walk(parsed):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "open":
                mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
                binary = isinstance(mode, ast.Constant) and "b" in str(mode.value)
                assert binary or any(k.arg == "encoding" for k in call.keywords), ast.unparse(call)

"""Who acted, in a package: each event's SSH signature by the enrolled person, with an OpenSSH
allowed_signers of the keys enrolled by the package's own roster events, checked by stock
``ssh-keygen -Y verify`` and by ``custody verify-package``."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from custody.ledger.database import Ledger
from custody.ledger.signatures import FileKeySigner
from custody.package.readme import RUN_BLOCK
from tests.cli.test_actors import make_key
from tests.cli.test_package import refresh_tag_manifests
from tests.conftest import Custody, require_tool

INCIDENT = "2026-1207-CPD-03"
PEOPLE = {"tech-1": "technician", "tech-2": "technician", "sup-1": "supervisor"}


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def _export(custody: Custody, keys: dict[str, Path], out: Path) -> Path:
    _ok(custody("--key", str(keys["sup-1"]), "export", "--incident", INCIDENT, "--out", str(out),
                "--recipient", "Public Defender", "--no-contact-sheets"))
    return out


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An administrator who enrolled two technicians and a supervisor; each technician ingested
    a file into the incident; a package; then tech-2's key was revoked, an event was signed
    with it all the same, and a second package was made."""
    base = tmp_path_factory.mktemp("signed-office")
    keys = {name: make_key(base, name) for name in ["admin-1", *PEOPLE]}
    custody = Custody(base / "home", {"CUSTODY_HOME": str(base / "home"), "CUSTODY_ACTOR": "", "CUSTODY_DB": "",
                                      "CUSTODY_STORE": ""})
    _ok(custody("init", "--admin", "admin-1", "--admin-key", str(keys["admin-1"])))
    for name, role in PEOPLE.items():
        _ok(custody("--key", str(keys["admin-1"]), "actor", "enroll", name, "--role", role,
                    "--key-file", str(keys[name]) + ".pub"))
    _ok(custody("--key", str(keys["tech-1"]), "incident", "create", INCIDENT, "--occurred-at", "2026-12-06T22:10:00Z",
                "--agency", "CPD"))
    for name in ("tech-1", "tech-2"):
        clip = base / f"{name}.bin"
        clip.write_bytes(f"footage recorded by {name}".encode())
        _ok(custody("--key", str(keys[name]), "ingest", str(clip), "--incident", INCIDENT))
    first = _export(custody, keys, base / "first")
    _ok(custody("--key", str(keys["admin-1"]), "actor", "revoke", "tech-2", "--reason", "laptop stolen"))
    time.sleep(2.1)  # valid-before has a resolution of one second, and a key revoked in the second it was enrolled keeps the next one too
    events = custody.json("log")
    evidence = next(e["subject"]["evidence"] for e in events if e["action"] == "ingested" and e["actor"] == "tech-2")
    ledger = Ledger(f"sqlite:///{custody.home / 'custody.db'}")
    ledger.event_signer = FileKeySigner.load("tech-2", keys["tech-2"])
    forged = ledger.append("viewed", actor="tech-2", role="technician",
                           subject={"evidence": evidence, "incident": INCIDENT})
    ledger.event_signer = None
    second = _export(custody, keys, base / "second")
    return {"custody": custody, "keys": keys, "first": first, "second": second, "forged": forged.seq}


def _events(bag: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bag / "custody/events.jsonl").read_text().splitlines()]


def _ssh_verify(bag: Path, event: dict[str, Any], work: Path, *, who: str | None = None,
                at: str | None = None) -> subprocess.CompletedProcess[str]:
    """Stock ssh-keygen on one event of a package, as README.txt says."""
    keygen = require_tool("ssh-keygen")
    data = work / f"event-{event['seq']}.bytes"
    data.write_bytes(event["leaf"].encode("utf-8"))
    when = at or event["time"][:19].replace("-", "").replace("T", "").replace(":", "") + "Z"
    with data.open("rb") as stdin:
        return subprocess.run(
            [keygen, "-Y", "verify", "-f", str(bag / "custody/allowed_signers"), "-I", who or event["actor"],
             "-n", "custody-event", "-O", f"verify-time={when}", "-s", str(bag / f"custody/signatures/event-{event['seq']}.sig")],
            stdin=stdin, capture_output=True, text=True, timeout=60,
        )


def _verify(custody: Custody, bag: Path) -> tuple[int, dict[str, Any]]:
    result = custody("verify-package", str(bag), "--json")
    return result.exit_code, json.loads(result.stdout)


def test_each_signed_event_in_the_package_verifies_with_stock_ssh_keygen(office: dict[str, Any], tmp_path: Path) -> None:
    bag: Path = office["first"]
    events = _events(bag)
    signed = [e for e in events if (bag / f"custody/signatures/event-{e['seq']}.sig").is_file()]
    actions = {(e["action"], e["actor"]) for e in signed}
    # the enrollments that establish the keys, the technicians' ingests and the exporter's event
    assert {("actor-enrolled", "admin-1"), ("ingested", "tech-1"), ("ingested", "tech-2"),
            ("export-prepared", "sup-1")} <= actions
    assert len(signed) == len(events), "every event of this office was signed by an enrolled person"
    allowed = (bag / "custody/allowed_signers").read_text()
    assert [line.split()[0] for line in allowed.splitlines() if not line.startswith("#")] == ["admin-1", *PEOPLE]
    for event in signed:
        good = _ssh_verify(bag, event, tmp_path)
        assert good.returncode == 0, (event["seq"], good.stderr)
        assert f'Good "custody-event" signature for {event["actor"]} with ED25519 key' in good.stdout
    ingest = next(e for e in signed if e["action"] == "ingested" and e["actor"] == "tech-1")
    assert _ssh_verify(bag, ingest, tmp_path, who="tech-2").returncode != 0, "another person's name is refused"
    code, report = _verify(office["custody"], bag)
    assert code == 0, report["findings"]
    assert report["actors"]["signed"] == len(signed) and report["actors"]["unsigned"] == 0
    assert set(report["actors"]["signers"]) == {"admin-1", "tech-1", "tech-2", "sup-1"}
    readme = (bag / "README.txt").read_text()
    assert "ssh-keygen -Y verify -f custody/allowed_signers -I " in readme
    report_html = (bag / "report.html").read_text()
    assert f"{len(signed)} of {len(events)} event(s) signed by the enrolled person who caused them" in report_html
    assert "NOT signed by an enrolled person" not in report_html and "SIGNATURE PROBLEM" not in report_html


def test_the_readme_block_runs_ssh_keygen_on_every_signature(office: dict[str, Any], tmp_path: Path) -> None:
    require_tool("ssh-keygen")
    fresh = tmp_path / "received"
    shutil.copytree(office["first"], fresh)
    blocks = {m["what"].split(".")[0]: m["commands"] for m in RUN_BLOCK.finditer((fresh / "README.txt").read_text())}
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    done = subprocess.run(["/bin/bash", "-c", blocks["3b"]], cwd=fresh, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    count = len(list((fresh / "custody/signatures").iterdir()))
    assert f"OK: {count} signature(s) verified by ssh-keygen" in done.stdout
    sig = next((fresh / "custody/signatures").iterdir())
    other = sorted((fresh / "custody/signatures").iterdir())[-1]
    shutil.copy(other, sig)
    bad = subprocess.run(["/bin/bash", "-c", blocks["3b"]], cwd=fresh, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and f"FAILED: event {sig.name[6:-4]} is not signed" in bad.stdout


def test_a_tampered_signature_is_reported_by_verify_package(office: dict[str, Any], tmp_path: Path) -> None:
    bag = tmp_path / "pkg"
    shutil.copytree(office["first"], bag)
    ingest = next(e for e in _events(bag) if e["action"] == "ingested" and e["actor"] == "tech-1")
    path = bag / f"custody/signatures/event-{ingest['seq']}.sig"
    lines = path.read_text().splitlines()
    body = lines[2]
    lines[2] = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    path.write_text("\n".join(lines) + "\n")
    refresh_tag_manifests(bag)
    assert _ssh_verify(bag, ingest, tmp_path).returncode != 0
    result = office["custody"]("verify-package", str(bag))
    assert result.exit_code == 3
    code, report = _verify(office["custody"], bag)
    assert code == 3
    mine = [f for f in report["findings"] if f["kind"] == "bad-signature"]
    assert [f["subject"] for f in mine] == [f"custody/events.jsonl:{_line(bag, ingest['seq'])} (event {ingest['seq']})"]
    assert "signature does not verify" in mine[0]["message"]
    # the only other findings are the seal's: the forger cannot reseal without the ledger's key
    others = {(f["kind"], f["subject"]) for f in report["findings"] if f["kind"] != "bad-signature"}
    assert others <= {("mismatch", name) for name in (path.relative_to(bag).as_posix(), "tagmanifest-sha256.txt",
                                                      "tagmanifest-sha512.txt")}, others


def _line(bag: Path, seq: int) -> int:
    return next(n for n, e in enumerate(_events(bag), 1) if e["seq"] == seq)


def test_a_removed_signature_and_an_edited_allowed_signers_are_reported(office: dict[str, Any], tmp_path: Path) -> None:
    bag = tmp_path / "pkg"
    shutil.copytree(office["first"], bag)
    ingest = next(e for e in _events(bag) if e["action"] == "ingested" and e["actor"] == "tech-2")
    (bag / f"custody/signatures/event-{ingest['seq']}.sig").unlink()
    allowed = bag / "custody/allowed_signers"
    text = allowed.read_text()
    key = " ".join(text.splitlines()[1].split()[-2:])
    allowed.write_text(text + f'mallory namespaces="custody-event" {key}\n')
    code, report = _verify(office["custody"], bag)
    assert code == 3
    kinds = {(f["kind"], f["subject"]) for f in report["findings"]}
    assert ("missing", f"custody/signatures/event-{ingest['seq']}.sig") in kinds
    assert ("mismatch", "custody/allowed_signers") in kinds


def test_a_signature_by_a_revoked_key_after_its_revocation_is_reported(office: dict[str, Any], tmp_path: Path) -> None:
    bag: Path = office["second"]
    events = {e["seq"]: e for e in _events(bag)}
    forged = events[office["forged"]]
    revocation = next(e for e in events.values() if e["action"] == "actor-revoked")
    assert revocation["seq"] < forged["seq"] and revocation["details"]["name"] == "tech-2"
    allowed = (bag / "custody/allowed_signers").read_text()
    [tech2] = [line for line in allowed.splitlines() if line.startswith("tech-2 ")]
    assert "valid-before=" in tech2 and "valid-after=" in tech2
    assert f"revoked at event {revocation['seq']}" in allowed
    earlier = next(e for e in events.values() if e["action"] == "ingested" and e["actor"] == "tech-2")
    assert _ssh_verify(bag, earlier, tmp_path).returncode == 0, "before its revocation the key counts"
    late = _ssh_verify(bag, forged, tmp_path)
    assert late.returncode != 0, late.stdout
    code, report = _verify(office["custody"], bag)
    assert code == 3
    assert [(f["kind"], f["subject"]) for f in report["findings"]] == [
        ("signer-revoked", f"custody/events.jsonl:{_line(bag, forged['seq'])} (event {forged['seq']})")]
    assert f"revoked at event {revocation['seq']}" in report["findings"][0]["message"]
    text = office["custody"]("verify-package", str(bag))
    assert text.exit_code == 3 and "signed by tech-2's key" in text.stderr
    report_html = (bag / "report.html").read_text()
    assert "SIGNATURE PROBLEM: signed by tech-2" in report_html and "with a signature problem (events " \
        f"{forged['seq']})" in report_html


def test_a_station_event_is_named_unsigned_in_the_report_and_a_wrong_role_is_a_finding(office: dict[str, Any],
                                                                                        tmp_path: Path) -> None:
    """A third package after a station (no personal key) ingested a file into the incident and a
    technician's key signed a hold no technician may place: the report names the unsigned
    events, and verify-package names the event whose signer's role may not take that action."""
    custody, keys = office["custody"], office["keys"]
    clip = tmp_path / "dock3.bin"
    clip.write_bytes(b"docked at station 3")
    station = custody("ingest", str(clip), "--incident", INCIDENT, env={"CUSTODY_ACTOR": "dock-3"})
    assert station.exit_code == 0, station.output
    events = custody.json("log")
    unsigned = next(e for e in events if e["actor"] == "dock-3")
    assert unsigned["action"] == "ingested"
    evidence = next(e["subject"]["evidence"] for e in events if e["action"] == "ingested" and e["actor"] == "tech-1")
    ledger = Ledger(f"sqlite:///{custody.home / 'custody.db'}")
    ledger.event_signer = FileKeySigner.load("tech-1", keys["tech-1"])
    wrong = ledger.append("hold-placed", actor="tech-1", role="technician", subject={"evidence": evidence, "incident": INCIDENT},
                          details={"hold": "H-X", "authority": "none", "reason": "not a supervisor"})
    ledger.event_signer = None
    bag = _export(custody, keys, tmp_path / "third")
    in_package = {e["seq"] for e in _events(bag)}
    assert {unsigned["seq"], wrong.seq} <= in_package
    report_html = " ".join((bag / "report.html").read_text().split())
    assert "NOT signed by an enrolled person" in report_html
    assert f"NOT signed by an enrolled person (events {unsigned['seq']}" in report_html
    code, report = _verify(custody, bag)
    assert code == 3
    assert unsigned["seq"] in report["actors"]["unsigned_events"]
    line = _line(bag, wrong.seq)
    assert ("role-not-permitted", f"custody/events.jsonl:{line} (event {wrong.seq})") in {
        (f["kind"], f["subject"]) for f in report["findings"]}


def test_a_key_revoked_in_the_second_it_was_enrolled_keeps_a_line_ssh_keygen_accepts(tmp_path: Path) -> None:
    """ssh-keygen refuses an allowed_signers line whose valid-before is not after its valid-after,
    and with it the whole file: a key enrolled and revoked within one second gets the narrowest
    window it accepts, and stock ssh-keygen verifies a signature made in that second."""
    from custody.actors.replay import allowed_signers
    from custody.actors.roster import Person
    from custody.ledger import sshsig

    keygen = require_tool("ssh-keygen")
    key = make_key(tmp_path, "tech-9")
    line = (tmp_path / "tech-9.pub").read_text().strip()
    public = " ".join(line.split()[:2])
    person = Person(name="tech-9", role="technician", key=public, fingerprint=sshsig.PublicKey.parse(public).fingerprint,
                    enrolled_seq=2, enrolled_by="admin-1", revoked_seq=3, revoked_by="admin-1",
                    enrolled_at="2026-12-07T03:00:00.100000Z", revoked_at="2026-12-07T03:00:00.900000Z")
    text = allowed_signers([person])
    [entry] = [row for row in text.splitlines() if row.startswith("tech-9 ")]
    assert 'valid-after="20261207030000Z"' in entry and 'valid-before="20261207030001Z"' in entry
    signers = tmp_path / "allowed_signers"
    signers.write_text(text)
    message = tmp_path / "event.bytes"
    message.write_bytes(b"an event signed in the second of its enrollment\n")
    subprocess.run([keygen, "-Y", "sign", "-q", "-f", str(key), "-n", "custody-event", str(message)], check=True)
    signature = tmp_path / "event.bytes.sig"

    def verify(when: str) -> subprocess.CompletedProcess[str]:
        with message.open("rb") as stdin:
            return subprocess.run([keygen, "-Y", "verify", "-f", str(signers), "-I", "tech-9", "-n", "custody-event",
                                   "-O", f"verify-time={when}", "-s", str(signature)],
                                  stdin=stdin, capture_output=True, text=True, timeout=60)

    inside = verify("20261207030000Z")
    assert inside.returncode == 0, inside.stderr
    after = verify("20261207030005Z")
    assert after.returncode != 0 and "bad options" not in after.stderr

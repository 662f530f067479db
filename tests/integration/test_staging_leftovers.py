"""Leftovers of killed writers in the local store's staging area (issue 14), with real
``custody`` processes killed by real signals:

* a writer killed with SIGKILL in the middle of writing its staging file leaves a ``.part``;
  ``custody audit`` reports it as a ``staging-leftover`` finding naming its path (and removes
  it), and the next ``custody ingest`` removes another one and says so;
* a live writer's staging file (an ingest stopped with SIGSTOP while it writes: alive, holding
  its lock) is left alone by an ingest and an audit run meanwhile, and the stopped ingest, once
  continued, stores and records its file;
* SIGTERM during an ingest exits 130 ("interrupted") and leaves nothing in the staging area,
  wherever it lands in a run of several files (a re-run then completes, audit finds nothing);
* on Ceph RGW, a multipart upload left by an ingest killed with SIGKILL is left alone by an
  audit while it is younger than ``--in-flight-grace`` (it may be a live ingest's), and
  reported as a ``staging-leftover`` and aborted by an audit once it is older;
* a writer killed after the object's lock record was written but before its bytes were linked
  under the key (the commit half done) is recovered by the next ingest with the retention that
  ingest asked for, and audits find nothing (no ``weak-retention``, no exit 5).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIG = 3 << 30  # a sparse file: reading it costs no disk, and its ingest writes for seconds


class Site:
    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.staging = self.home / "store" / "tmp"
        self.env = {
            **os.environ,
            "CUSTODY_HOME": str(self.home),
            "CUSTODY_ACTOR": "leftover-test",
            "CUSTODY_DB": "",
            "CUSTODY_STORE": "",
            "PYTHONPATH": str(REPO),
        }
        self.env.pop("CUSTODY_TEST_KILL_AT", None)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=300, cwd=REPO)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPO)

    def parts(self) -> list[Path]:
        return sorted(self.staging.iterdir())

    def writing(self, process: subprocess.Popen[str]) -> Path:
        """Wait until ``process`` has written bytes to a staging file; that file."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, ("the ingest ended before it wrote", process.communicate())
            parts = [p for p in self.parts() if p.suffix == ".part" and p.stat().st_size > 0]
            if parts:
                return parts[0]
            time.sleep(0.01)
        raise AssertionError("no staging file was written within 60 s")


def big_file(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(BIG)
        handle.seek(BIG - 8)
        handle.write(os.urandom(8))  # distinct bytes for every test
    return path


def killed_mid_write(site: Site, source: Path) -> Path:
    process = site.start("ingest", str(source))
    part = site.writing(process)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert part.exists() and part.stat().st_size > 0, "a writer killed mid-write leaves its staging file"
    return part


@pytest.fixture
def site(tmp_path: Path) -> Site:
    made = Site(tmp_path)
    done = made.run("init")
    assert done.returncode == 0, done.stderr
    return made


def test_a_killed_writers_leftover_is_reported_by_audit_and_swept_by_the_next_ingest(site: Site, tmp_path: Path) -> None:
    part = killed_mid_write(site, big_file(tmp_path / "first.bin"))
    audit = site.run("audit", "--json")
    report = json.loads(audit.stdout)
    assert audit.returncode == 3, (audit.stdout, audit.stderr)
    leftovers = [f for f in report["findings"] if f["kind"] == "staging-leftover"]
    assert [f["subject"] for f in leftovers] == [str(part)], report["findings"]
    assert leftovers[0]["removed"] is True and "removed" in leftovers[0]["message"]
    assert report["findings_by_kind"]["staging-leftover"] == 1
    assert site.parts() == []
    logged = json.loads(site.run("log", "--json").stdout)
    audited = [e for e in logged if e["action"] == "audited"][-1]
    assert [f["subject"] for f in audited["details"]["findings"]] == [str(part)], "the finding is in the ledger"

    part = killed_mid_write(site, big_file(tmp_path / "second.bin"))
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(10_000))
    ingest = site.run("ingest", str(small), "--json")
    assert ingest.returncode == 0, ingest.stderr
    assert [r["status"] for r in json.loads(ingest.stdout)] == ["recorded"]
    assert "removed 1 staging file(s)" in ingest.stderr, ingest.stderr
    assert json.loads(ingest.stderr.strip().splitlines()[-1])["summary"]["staging_leftovers_removed"] == 1
    assert not part.exists() and site.parts() == []
    again = site.run("audit", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["findings"] == [], again.stdout


def test_a_live_writers_staging_file_is_not_swept(site: Site, tmp_path: Path) -> None:
    source = big_file(tmp_path / "live.bin")
    process = site.start("ingest", str(source), "--json")
    try:
        part = site.writing(process)
        process.send_signal(signal.SIGSTOP)  # alive, holding its staging file's lock, not writing
        small = tmp_path / "small.bin"
        small.write_bytes(os.urandom(10_000))
        ingest = site.run("ingest", str(small))
        assert ingest.returncode == 0, ingest.stderr
        assert "staging file" not in ingest.stderr
        audit = site.run("audit", "--json")
        findings = json.loads(audit.stdout)["findings"]
        assert [f for f in findings if f["kind"] == "staging-leftover"] == [], findings
        assert part.exists(), "the live writer's staging file was swept"
    finally:
        process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert [r["status"] for r in json.loads(out)] == ["recorded"]
    assert site.parts() == []
    verified = site.run("verify", str(source), "--json")
    assert verified.returncode == 0, verified.stdout


def test_sigterm_during_ingest_exits_130_and_leaves_nothing(site: Site, tmp_path: Path) -> None:
    process = site.start("ingest", str(big_file(tmp_path / "term.bin")))
    site.writing(process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert site.parts() == []
    audit = site.run("audit", "--json")
    assert audit.returncode == 0 and json.loads(audit.stdout)["findings"] == [], audit.stdout


KILL_BEFORE_LINK = """
import os, signal, sys
real = os.link
def link(src, dst, *args, **kwargs):
    if os.sep + "objects" + os.sep + "evidence" + os.sep in str(dst):
        os.kill(os.getpid(), signal.SIGKILL)  # the lock record is written, the bytes not linked
    return real(src, dst, *args, **kwargs)
os.link = link
sys.argv = ["custody", "ingest", sys.argv[1]]
from cli.main import main
main()
"""


def test_a_commit_killed_half_way_is_recovered_with_the_retention_asked_for(site: Site, tmp_path: Path) -> None:
    source = tmp_path / "half.bin"
    source.write_bytes(os.urandom(300_000))
    killed = subprocess.run([sys.executable, "-c", KILL_BEFORE_LINK, str(source)], env=site.env,
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((site.home / "store" / "meta" / "evidence").iterdir())) == 1, "the lock record was written"
    objects = site.home / "store" / "objects" / "evidence"
    assert not objects.exists() or list(objects.iterdir()) == [], "the bytes were not linked under the key"
    time.sleep(1.1)  # the re-run asks for a retention at least a whole second later
    rerun = site.run("ingest", str(source), "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert [r["status"] for r in json.loads(rerun.stdout)] == ["recorded"]
    assert "removed 1 staging file(s)" in rerun.stderr
    assert site.parts() == []
    audit = site.run("audit", "--json")
    assert audit.returncode == 0 and json.loads(audit.stdout)["findings"] == [], audit.stdout


def test_an_upload_left_by_a_killed_ingest_on_ceph_rgw_is_reported_and_aborted_by_audit(
    rgw_credentials: object, rgw_url: str, s3_admin: Any, tmp_path: Path
) -> None:
    site = Site(tmp_path)
    site.env["CUSTODY_STORE"] = rgw_url + "&multipart_threshold_mib=8&part_size_mib=8"
    site.home.mkdir(mode=0o700)
    (site.home / "config.toml").write_text("[retention.categories.unflagged]\ndays = 1\n")
    assert site.run("init").returncode == 0
    bucket = rgw_url.split("/")[2].split("?")[0]
    prefix = rgw_url.split("?")[0].split("/", 3)[3] + "/"

    def uploads() -> list[dict[str, Any]]:
        listed = s3_admin.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "evidence/").get("Uploads", [])
        return list(listed)

    source = tmp_path / "upload.bin"
    source.write_bytes(os.urandom(1 << 20) * 300)  # 300 MiB in 8 MiB parts
    process = site.start("ingest", str(source))
    deadline = time.monotonic() + 120
    while not uploads():
        assert process.poll() is None and time.monotonic() < deadline, "no multipart upload began"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    [left] = uploads()

    young = site.run("audit", "--json")  # begun less than the grace ago: maybe a live ingest's
    assert young.returncode == 0, young.stdout
    assert json.loads(young.stdout)["findings"] == [] and uploads() == [left]

    old = site.run("audit", "--json", "--in-flight-grace", "0s")
    assert old.returncode == 3, old.stdout
    [finding] = json.loads(old.stdout)["findings"]
    assert finding["kind"] == "staging-leftover" and finding["removed"] is True
    assert left["Key"] in finding["subject"] and left["UploadId"] in finding["subject"]
    assert uploads() == []
    again = site.run("audit", "--json", "--in-flight-grace", "0s")
    assert again.returncode == 0 and json.loads(again.stdout)["findings"] == [], again.stdout


@pytest.mark.parametrize("delay_ms", [300, 600, 900, 1300])
def test_sigterm_at_any_point_of_an_ingest_leaves_nothing_and_a_rerun_completes(site: Site, tmp_path: Path, delay_ms: int) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for index in range(4):
        (inputs / f"file-{index}.bin").write_bytes(os.urandom(8 << 20))
    process = site.start("ingest", str(inputs))
    time.sleep(delay_ms / 1000)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    # -SIGTERM: it came before the interpreter had started the command (nothing was begun)
    assert process.returncode in (0, 130, -signal.SIGTERM), (delay_ms, process.returncode, err)
    if process.returncode == 130:
        assert "interrupted" in err
    assert site.parts() == [], (delay_ms, site.parts())
    rerun = site.run("ingest", str(inputs), "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert "staging file" not in rerun.stderr, "an interrupted ingest left a staging file for the next one"
    audit = site.run("audit", "--json")
    assert audit.returncode == 0 and json.loads(audit.stdout)["findings"] == [], audit.stdout

"""The C2PA library runs in a worker process of its own (custody.media.c2pa_worker): its record is
the one the library gives in process, and a crash, an abort, going over the memory limit or a hang
of the native library costs the file a finding, never the ingest; no worker outlives the ingest,
however the ingest ends (normally, SIGTERM, SIGKILL).

The faults are made by the worker's test-only hook (``CUSTODY_TEST_C2PA_FAULT``) on real signed
clips, so the worker is a real process killed by a real signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from custody.media.c2pa_worker import FAULT_VARIABLE
from custody.media.credentials import CredentialReader
from tests.conftest import Custody
from tests.integration.test_content_credentials import signed_clips, test_pki  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def workers(parent: int | None = None) -> list[int]:
    """Pids of live C2PA workers (of ``parent`` when given: the ingest pid is in their command)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"custody.media.c2pa_child" in argv and state != "Z" and (parent is None or argv[-3:-2] == [str(parent).encode()]):
            found.append(int(entry.name))
    return found


def gone(pids: list[int], within: float = 10.0) -> bool:
    ends = time.monotonic() + within
    while time.monotonic() < ends:
        if not any(Path(f"/proc/{pid}").exists() and pid in workers() for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_isolated_record_equals_in_process(signed_clips: dict[str, Path], test_pki: Path, tmp_path: Path) -> None:  # noqa: F811
    cut = tmp_path / "cut.mp4"
    data = signed_clips["valid"].read_bytes()
    cut.write_bytes(data[: data.index(b"uuid") + 196])  # a manifest box that ends past the file's end
    notes = tmp_path / "notes.txt"
    notes.write_text("officer's notes\n")
    anchors = (test_pki / "root.pem").read_text()
    for trust in (None, anchors):
        isolated, in_process = CredentialReader(trust), CredentialReader(trust, isolate=False)
        for path in (*signed_clips.values(), cut, notes):
            assert isolated.read(str(path)) == in_process.read(str(path)), (trust is not None, path.name)
        pid = isolated._worker.pid if isolated._worker else None
        assert pid in workers(os.getpid())  # one worker, reused for every file
        isolated.close()
        assert gone([pid])
    outcome = {k: CredentialReader().read(str(p))["status"] for k, p in signed_clips.items()}
    assert outcome == {"valid": "valid", "tampered": "invalid", "absent": "absent"}


def test_a_worker_whose_starting_thread_ended_is_replaced(signed_clips: dict[str, Path]) -> None:  # noqa: F811
    """PR_SET_PDEATHSIG fires when the thread that started the worker ends: the next file gets a
    new worker, not a false crash."""
    import threading

    reader = CredentialReader()
    thread = threading.Thread(target=reader.read, args=(str(signed_clips["valid"]),))
    thread.start()
    thread.join()
    first = reader._worker.pid if reader._worker else None
    assert first is not None and gone([first])  # ended with its thread
    record = reader.read(str(signed_clips["valid"]))
    assert record["status"] == "valid", record
    assert reader._worker is not None and reader._worker.pid not in (None, first)
    reader.close()


def test_an_mp4_without_a_c2pa_box_starts_no_worker(signed_clips: dict[str, Path]) -> None:  # noqa: F811
    reader = CredentialReader()
    assert reader.read(str(signed_clips["absent"]))["status"] == "absent"
    assert reader._worker is not None and reader._worker.pid is None


@pytest.mark.parametrize(("fault", "said"), [
    ("segv", "crashed (signal 11, SIGSEGV)"),
    ("abort", "crashed (signal 6, SIGABRT)"),
    ("memory", "went over its memory limit (2048 MiB)"),
])
def test_a_crashing_library_is_a_finding(signed_clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                         fault: str, said: str) -> None:
    reader = CredentialReader()
    monkeypatch.setenv(FAULT_VARIABLE, fault)
    record = reader.read(str(signed_clips["valid"]))
    assert record == {"status": "error", "tool": reader.tool, "finding":
                      f"the C2PA library {said} reading BWC-101.mp4; the bytes are preserved as they are"}
    assert workers(os.getpid()) == []  # the crashed worker is reaped, not a zombie
    monkeypatch.delenv(FAULT_VARIABLE)
    assert reader.read(str(signed_clips["valid"]))["status"] == "valid"  # the next file gets a new worker
    reader.close()
    assert gone(workers(os.getpid()))


def test_a_hang_hits_the_deadline(signed_clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    reader = CredentialReader(timeout=2)
    monkeypatch.setenv(FAULT_VARIABLE, "hang")
    started = time.monotonic()
    record = reader.read(str(signed_clips["tampered"]))
    assert 2 <= time.monotonic() - started < 4  # stopped once, not tried again
    assert record["status"] == "error"
    assert record["finding"] == ("the C2PA library did not finish reading BWC-102.mp4 within 2 s (hung?) and was "
                                 "stopped; the bytes are preserved as they are")
    assert workers(os.getpid()) == []


def test_ingest_records_a_file_that_crashes_the_library(initialized: Custody, signed_clips: dict[str, Path]) -> None:  # noqa: F811
    result = initialized("ingest", "--json", str(signed_clips["valid"]), str(signed_clips["absent"]),
                         env={FAULT_VARIABLE: "segv"})
    assert result.exit_code == 0, result.output  # as for invalid credentials: recorded, with a warning
    records = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert [r["status"] for r in records.values()] == ["recorded", "recorded"]
    finding = "the C2PA library crashed (signal 11, SIGSEGV) reading BWC-101.mp4; the bytes are preserved as they are"
    assert records["BWC-101.mp4"]["warning"] == finding
    assert finding in result.stderr
    assert "warning" not in records["BWC-100.mp4"]
    events = {e["subject"]["evidence"]: e["details"] for e in initialized.json("log") if e["action"] == "ingested"}
    credentials = events[records["BWC-101.mp4"]["blake3"]]["content_credentials"]
    assert credentials["status"] == "error" and credentials["finding"] == finding
    assert events[records["BWC-100.mp4"]["blake3"]]["content_credentials"]["status"] == "absent"
    assert workers(os.getpid()) == []


def _environment(tmp_path: Path, fault: str | None) -> dict[str, str]:
    env = {**os.environ, "CUSTODY_HOME": str(tmp_path / "home"), "CUSTODY_ACTOR": "tech-0412", "CUSTODY_DB": "",
           "CUSTODY_STORE": "", "PYTHONPATH": str(REPO)}
    env.pop(FAULT_VARIABLE, None)
    if fault:
        env[FAULT_VARIABLE] = fault
    subprocess.run([sys.executable, "-m", "cli.main", "init"], env=env, check=True, capture_output=True, cwd=REPO)
    return env


def _worker_of(process: subprocess.Popen[str]) -> int:
    ends = time.monotonic() + 60
    while time.monotonic() < ends:
        assert process.poll() is None, process.communicate()
        found = workers(process.pid)
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError("no C2PA worker started within 60 s")


def test_no_worker_after_a_normal_ingest(signed_clips: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    env = _environment(tmp_path, None)
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "ingest", *(str(p) for p in signed_clips.values())],
                               env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[int] = []
    while process.poll() is None:
        seen.extend(p for p in workers(process.pid) if p not in seen)
        time.sleep(0.005)
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert out.count("recorded") == 3
    assert seen  # the signed clips needed the library
    assert not any(pid in workers() for pid in seen)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_a_stopped_ingest(signed_clips: dict[str, Path], tmp_path: Path,  # noqa: F811
                                             how: signal.Signals) -> None:
    env = _environment(tmp_path, "hang")
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "ingest", str(signed_clips["valid"])],
                               env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = _worker_of(process)
    process.send_signal(how)
    out, err = process.communicate(timeout=60)
    assert process.returncode == (130 if how == signal.SIGTERM else -signal.SIGKILL), err
    assert gone([worker])

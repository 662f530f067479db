"""custody hash (and verify/ingest) never print or record a digest not computed from a file's
bytes: devices, sockets and links to them are refused, pseudo files are read to their end, and
a named pipe never blocks forever."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import blake3
import pytest

from tests.conftest import Custody

EMPTY_B3 = blake3.blake3(b"").hexdigest()
RUN = [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero", "/dev/urandom"])
def test_character_devices_and_links_to_them_are_refused_naming_the_file(custody: Custody, tmp_path: Path, device: str) -> None:
    link = tmp_path / "innocent.mp4"
    link.symlink_to(device)
    for target in (device, str(link)):
        for extra in ((), ("--sha256",)):
            result = custody("hash", *extra, target)
            assert result.exit_code == 2, result.output
            assert result.stdout == ""
            assert f"custody: {target}: a character device; only the bytes of regular files are hashed" in result.stderr


def test_a_socket_is_refused(custody: Custody, tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        result = custody("hash", str(path))
    finally:
        server.close()
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{path}: a socket" in result.stderr


def test_good_files_still_print_when_a_special_one_is_refused(custody: Custody, tmp_path: Path) -> None:
    good = tmp_path / "a.bin"
    good.write_bytes(b"evidence")
    result = custody("hash", str(good), "/dev/null")
    assert result.exit_code == 2
    assert result.stdout == f"{blake3.blake3(b'evidence').hexdigest()}  {good}\n"
    assert EMPTY_B3 not in result.stdout


def test_a_procfs_file_whose_size_reads_zero_is_read_to_its_end(custody: Custody) -> None:
    assert os.stat("/proc/version").st_size == 0
    content = Path("/proc/version").read_bytes()
    assert content
    import hashlib

    b3 = custody("hash", "/proc/version")
    sha = custody("hash", "--sha256", "/proc/version")
    assert b3.exit_code == 0 and sha.exit_code == 0
    assert b3.stdout == f"{blake3.blake3(content).hexdigest()}  /proc/version\n"
    assert sha.stdout == f"{hashlib.sha256(content).hexdigest()}  /proc/version\n"


def test_a_sysfs_file_that_cannot_be_mapped_is_read(custody: Custody) -> None:
    path = Path("/sys/class/net/lo/address")
    if not path.exists():
        pytest.skip("no /sys/class/net/lo on this machine")
    content = path.read_bytes()
    result = custody("hash", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{blake3.blake3(content).hexdigest()}  {path}\n"


def _timed(args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - start


def test_a_fifo_is_refused_by_default_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done, took = _timed([*RUN, "hash", str(fifo)], timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{fifo}: a FIFO (named pipe); only the bytes of regular files are hashed" in done.stderr
    assert took < 20


def test_a_fifo_with_no_writer_gives_up_after_the_timeout(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done, took = _timed([*RUN, "hash", "--fifo", "--fifo-timeout", "1", str(fifo)], timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "a FIFO that sent nothing for 1 s" in done.stderr
    assert took < 20


def test_a_fifo_is_read_to_its_end_when_asked(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = os.urandom(3 << 20)

    def write() -> None:
        time.sleep(0.5)  # the reader is waiting before the writer comes
        deadline = time.monotonic() + 20
        while True:  # never block this test forever if no reader comes
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
        os.set_blocking(fd, True)
        try:
            with open(fd, "wb") as handle:
                handle.write(data[: 1 << 20])
                handle.flush()
                time.sleep(0.3)
                handle.write(data[1 << 20 :])
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=write)
    writer.start()
    done, _ = _timed([*RUN, "hash", "--fifo", "--fifo-timeout", "10", str(fifo)], timeout=60)
    writer.join()
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{blake3.blake3(data).hexdigest()}  {fifo}\n"


def test_out_of_range_fifo_timeout_is_a_usage_error(custody: Custody, tmp_path: Path) -> None:
    result = custody("hash", "--fifo", "--fifo-timeout", "0", str(tmp_path))
    assert result.exit_code == 2
    assert "0 is not in the range" in result.stderr


def test_verify_refuses_a_device_and_never_looks_up_the_empty_digest(initialized: Custody, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert initialized("ingest", str(empty)).exit_code == 0  # the empty object IS preserved
    link = tmp_path / "looks-like-a-clip.mp4"
    link.symlink_to("/dev/null")
    result = initialized("verify", str(link), "--json")
    assert result.exit_code == 2, result.output
    assert "(the file's bytes are the preserved ones)" not in result.stdout
    import json

    [record] = json.loads(result.stdout)
    assert record["ok"] is False and record["blake3"] is None
    assert record["findings"][0]["kind"] == "bad-reference"
    assert "not a regular file" in record["findings"][0]["message"]


def test_ingest_of_pseudo_files_and_devices_records_nothing(initialized: Custody, tmp_path: Path) -> None:
    link = tmp_path / "dev.mp4"
    link.symlink_to("/dev/zero")
    result = initialized("ingest", "/proc/version", str(link), "--json")
    import json

    records = {r["path"]: r for r in json.loads(result.stdout)}
    assert records[str(link)]["status"] == "skipped"
    assert "character device" in records[str(link)]["reason"]
    assert records["/proc/version"]["status"] == "failed"
    assert initialized.json("log") == []

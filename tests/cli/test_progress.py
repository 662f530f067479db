"""Progress on stderr: drawn on a terminal, silent when stderr is not one."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])


def _ingest(home: Path, folder: Path, stderr: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CUSTODY_HOME": str(home), "PYTHONPATH": ROOT, "COLUMNS": "120"}
    subprocess.run([sys.executable, "-m", "cli.main", "init"], env=env, check=True, capture_output=True)
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ingest", str(folder)], env=env, stdout=subprocess.DEVNULL, stderr=stderr
    )


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "dock"
    folder.mkdir()
    for index in range(3):
        (folder / f"clip-{index}.mp4").write_bytes(os.urandom(3 << 20))
    return folder


def test_progress_bar_with_bytes_and_rate_on_a_terminal(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    process = _ingest(tmp_path / "home", _folder(tmp_path), slave)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0
    os.close(master)
    text = output.decode("utf-8", "replace")
    assert "ingesting 3 file(s)" in text
    assert "MB/s" in text and "100%" in text and "files/s" in text
    assert "3/3 files" in text and "0/3 files" in text  # one bar over the job, counting files
    assert text.count("ingesting 3 file(s)") >= 2  # redrawn in place, not one bar per file
    assert re.search(r"recorded\s+3\b", text)


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    process = _ingest(tmp_path / "home", _folder(tmp_path), subprocess.PIPE)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0
    text = err.decode()
    assert "ingesting" not in text and "MB/s" not in text
    assert re.search(r"recorded\s+3\n", text)


def test_summary_table_counts_every_status_with_reasons(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.mkfifo(folder / "pipe.mp4")
    home = tmp_path / "home"
    first = _ingest(home, folder / "clip-0.mp4", subprocess.PIPE)
    assert first.wait(timeout=60) == 0
    env = {**os.environ, "CUSTODY_HOME": str(home), "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-m", "cli.main", "ingest", str(folder)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    table = done.stderr[done.stderr.index("ingest summary"):]
    assert "4 file(s)" in table.splitlines()[0]
    assert re.search(r"recorded\s+2\n", table) and re.search(r"already stored\s+1\n", table)
    assert re.search(r"skipped\s+1\n\s+1  a FIFO \(named pipe\); only regular files are read\n", table)
    assert re.search(r"failed\s+0\n", table)


def test_json_keeps_the_records_on_stdout_and_puts_the_summary_on_stderr(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (tmp_path / "empty-dir").mkdir()
    home = tmp_path / "home"
    env = {**os.environ, "CUSTODY_HOME": str(home), "PYTHONPATH": ROOT}
    subprocess.run([sys.executable, "-m", "cli.main", "init"], env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "cli.main", "ingest", "--json", str(tmp_path / "empty-dir"), str(folder),
                           str(folder / "clip-1.mp4")],
                          env=env, capture_output=True, text=True, timeout=120)
    records = json.loads(done.stdout)
    assert [r["status"] for r in records] == ["skipped", "recorded", "recorded", "recorded", "skipped"]
    summary = json.loads(done.stderr.strip().splitlines()[-1])["summary"]
    assert (summary["files"], summary["recorded"], summary["already-stored"], summary["skipped"], summary["failed"]) \
        == (5, 3, 0, 2, 0)
    assert summary["bytes"] == 3 * (3 << 20)
    assert sorted(e["files"] for e in summary["reasons"]["skipped"]) == [1, 1]
    assert done.returncode == 2

"""Progress on stderr: drawn on a terminal, silent when stderr is not one."""

from __future__ import annotations

import os
import pty
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
    assert "MB/s" in text and "100%" in text
    assert "3 recorded" in text


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    process = _ingest(tmp_path / "home", _folder(tmp_path), subprocess.PIPE)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0
    text = err.decode()
    assert "ingesting" not in text and "MB/s" not in text
    assert "3 recorded" in text

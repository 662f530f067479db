"""Probing starts ffprobe once per file: the version comes from the same run; and ffprobe runs leave
no temporary files behind, even when the process ends while one is still running."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from custody.media import tools as media_tools
from custody.media.listing import packet_list
from custody.media.probe import probe
from custody.media.tools import MediaTools, MediaUnreadable
from tests.conftest import Custody, require_tool

REPO = Path(__file__).resolve().parents[2]


def _counting_ffprobe(tmp_path: Path, real: str) -> tuple[str, Path]:
    log = tmp_path / "runs.log"
    wrapper = tmp_path / "ffprobe"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper), log


@pytest.mark.parametrize("kind", ["video", "not-media"])
def test_one_ffprobe_run_per_probe_with_its_version(tmp_path: Path, kind: str) -> None:
    real = require_tool("ffprobe")
    ffmpeg = require_tool("ffmpeg")
    wrapper, log = _counting_ffprobe(tmp_path, real)
    media_tools._version.cache_clear()
    media_tools._REPORTED_VERSIONS.clear()
    target = tmp_path / ("clip.mp4" if kind == "video" else "notes.bin")
    if kind == "video":
        subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=10",
                        "-c:v", "libx264", str(target)], check=True)
    else:
        target.write_bytes(bytes(range(256)) * 64)
    tools = MediaTools(ffprobe=wrapper)
    if kind == "video":
        details = probe(target, tools)
        reported = details["tool"]
    else:
        with pytest.raises(MediaUnreadable):
            probe(target, tools)
        reported = tools.version(wrapper)
    stock = subprocess.run([real, "-version"], capture_output=True, text=True, check=True).stdout.split()
    assert reported == f"ffprobe {stock[2]}"
    runs = log.read_text().splitlines()
    assert len(runs) == 1, runs
    assert "-show_program_version" in runs[0] and "-version" not in runs[0].split()


def _wait(condition: Callable[[], bool], what: str, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"ingest ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.02)


def test_a_repeat_whose_background_probe_is_abandoned_leaves_no_temporary_files(
    initialized: Custody, clips: list[Path], tmp_path: Path
) -> None:
    """The first file of an ingest is probed in the background while the ledger opens; a repeat
    is then recorded as another acquisition and the process exits with its packet listing still
    running. Deterministic: the acquisition's append is held (``CUSTODY_TEST_PAUSE``) until
    the listing's ffprobe has started, and that ffprobe is held until after the process ended."""
    real = require_tool("ffprobe")
    assert initialized("ingest", *map(str, clips)).exit_code == 0
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    log, go, marker = tmp_path / "runs.log", tmp_path / "go", tmp_path / "paused"
    wrapper = tmp_path / "ffprobe"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        f'case "$*" in *-show_data_hash*) while [ ! -e "{go}" ]; do sleep 0.05; done;; esac\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env.update(initialized.env, PYTHONPATH=str(REPO), TMPDIR=str(scratch), CUSTODY_FFPROBE=str(wrapper),
               CUSTODY_TEST_PAUSE=f"insert:{marker}")
    repeats = []
    try:
        for clip in clips:
            log.write_text("")
            process = subprocess.Popen([sys.executable, "-m", "cli.main", "ingest", "--json", str(clip)],
                                       cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            _wait(marker.exists, "the acquisition's append", process)
            deadline = time.monotonic() + 5
            # The repeat's listing usually starts before the held append ends; when the process
            # gets there first there is nothing to abandon, and the same no-leftover check holds.
            while "-show_data_hash" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            marker.unlink(missing_ok=True)
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            [result] = json.loads(out)
            repeats.append(result["status"])
            assert sorted(os.listdir(scratch)) == [], f"left behind by the repeat of {clip.name}"
    finally:
        go.touch()
    assert repeats == ["already-stored"] * len(clips)


def test_a_failed_packet_listing_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    with pytest.raises(MediaUnreadable):
        packet_list(broken, MediaTools(ffprobe=require_tool("ffprobe")))
    assert os.listdir(scratch) == []


def test_ingest_starts_ffprobe_once_per_new_media_file(initialized: Custody, clips: list[Path], tmp_path: Path) -> None:
    """The probe and the packet list of a file come from one ffprobe run (issue: two starts per
    file were most of the cost of a bulk ingest); a repeat needs none."""
    wrapper, log = _counting_ffprobe(tmp_path, require_tool("ffprobe"))
    result = initialized("ingest", "--json", *map(str, clips), env={"CUSTODY_FFPROBE": wrapper})
    assert result.exit_code == 0, result.output
    recorded = json.loads(result.stdout)
    assert [r["status"] for r in recorded] == ["recorded"] * len(clips)
    runs = log.read_text().splitlines()
    assert len(runs) == len(clips), runs
    assert all("-show_program_version" in run and "-show_data_hash" in run for run in runs)
    events = json.loads(initialized("log", "--json").stdout)
    for event in events:
        media = event["details"]["media"]
        assert media["kind"] == "video" and media["tool"].startswith("ffprobe ")
        assert [s["packets"] > 0 for s in media["streams"]] == [True, True]
        assert set(event["details"]["attachments"]) == {"packets"}

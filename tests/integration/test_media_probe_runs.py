"""Probing starts ffprobe once per file: the version comes from the same run."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from custody.media import tools as media_tools
from custody.media.probe import probe
from custody.media.tools import MediaTools, MediaUnreadable
from tests.conftest import require_tool


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

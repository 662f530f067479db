"""Fixtures shared by every test layer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli

IN_CI = bool(os.environ.get("CI"))


def require_tool(name: str) -> str:
    """The path of an external program; fail in CI, skip elsewhere, when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make test installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Custody:
    """Runs the command line in-process against one data directory."""

    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, list(args), env={**self.env, **(env or {})}, input=input, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def custody(tmp_path: Path) -> Custody:
    home = tmp_path / "home"
    env = {
        "CUSTODY_HOME": str(home),
        "CUSTODY_ACTOR": "tech-0412",
        "CUSTODY_DB": "",
        "CUSTODY_STORE": "",
    }
    return Custody(home, env)


@pytest.fixture
def initialized(custody: Custody) -> Custody:
    result = custody("init")
    assert result.exit_code == 0, result.output
    return custody


def make_clip(path: Path, *, seconds: int = 3, codec: str = "libx264", tone: int = 440, serial: str = "SN-0001") -> Path:
    """A real body-camera-like clip: video + AAC audio, creation time and device tags."""
    ffmpeg = require_tool("ffmpeg")
    subprocess.run(
        [
            ffmpeg, "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000:duration={seconds}",
            "-c:v", codec, "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
            "-shortest", "-metadata", "creation_time=2026-11-01T14:00:00Z",
            "-metadata", "make=Test Cameras", "-metadata", "model=BWC-4",
            "-metadata", f"serial_number={serial}", "-movflags", "+use_metadata_tags", str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("clips")
    return [make_clip(directory / f"BWC-00{i}.mp4", tone=300 + 100 * i, serial=f"SN-000{i}") for i in (1, 2, 3)]


@pytest.fixture
def clip_dir(tmp_path: Path, clips: list[Path]) -> Path:
    target = tmp_path / "export"
    target.mkdir()
    for clip in clips:
        shutil.copy(clip, target / clip.name)
    return target


RunTool = Callable[..., subprocess.CompletedProcess[str]]


def use_credentials(monkeypatch: pytest.MonkeyPatch, access_key: str, secret_key: str) -> None:
    """Put credentials where boto3's standard chain finds them, and nowhere else."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

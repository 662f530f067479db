"""What a new user meets first: the README's quick start on a machine without make or with the
venv off PATH, the demo's b3sum step, `custody verify DIR`, and an install without warnings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Custody

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_readme_says_make_is_needed_before_the_quick_start_uses_it() -> None:
    install = README.index("apt-get install -y make")
    assert install < README.index("make demo")
    assert "has no `make`" in README[:install]


def test_readme_says_how_to_run_custody_after_make_demo_and_how_a_prosecutor_installs_it() -> None:
    quick = README[README.index("## Quick start") : README.index("## Commands")]
    assert ".venv/bin/custody" in quick and ". .venv/bin/activate" in quick
    package = README[README.index("## Prosecutor package") :]
    assert "python3 -m venv ~/custody-verify" in package
    assert "~/custody-verify/bin/pip install" in package
    assert "~/custody-verify/bin/custody verify-package" in package


def test_make_demo_installs_b3sum() -> None:
    makefile = (REPO / "Makefile").read_text()
    line = next(l for l in makefile.splitlines() if l.startswith("\tinfra/dev/system-deps.sh") and "ffmpeg" in l
                and "ceph" not in l)
    assert "b3sum" in line.split()


def _b3check(tmp_path: Path, path_dirs: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": os.pathsep.join(path_dirs), "CUSTODY_HOME": str(tmp_path / "home")}
    return subprocess.run([str(REPO / "infra" / "dev" / "b3check.sh"), str(tmp_path / "clips")],
                          capture_output=True, text=True, env=env, timeout=120)


def test_demo_b3sum_step_tells_not_installed_from_mismatch(tmp_path: Path) -> None:
    b3sum = shutil.which("b3sum")
    if b3sum is None:
        pytest.fail("b3sum is not installed (make test installs it)")
    clips = tmp_path / "clips"
    clips.mkdir()
    for index in range(2):
        (clips / f"c{index}.mp4").write_bytes(os.urandom(1000))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "custody").symlink_to(Path(sys.executable).parent / "custody")
    base = [str(bindir), "/usr/bin", "/bin"]
    without = tmp_path / "nob3"
    without.mkdir()
    for tool in ("bash", "dirname", "cat"):
        found = shutil.which(tool)
        assert found
        (without / tool).symlink_to(found)
    missing = _b3check(tmp_path, [str(bindir), str(without)])
    assert missing.returncode == 0, missing.stderr
    assert "b3sum is not installed" in missing.stdout
    ok = _b3check(tmp_path, base)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "every file matches" in ok.stdout
    # a list that no longer matches the files: the check says MISMATCH, not "not installed"
    sums = (clips / "B3SUMS").read_text()
    (clips / "c1.mp4").write_bytes(b"altered")
    subprocess.run(["b3sum", "-c", "B3SUMS"], cwd=clips, capture_output=True)
    fake = tmp_path / "fakecustody"
    fake.mkdir()
    (fake / "custody").write_text(f"#!/bin/sh\nprintf '%s' '{sums}'\n")
    (fake / "custody").chmod(0o755)
    bad = _b3check(tmp_path, [str(fake), "/usr/bin", "/bin"])
    assert bad.returncode == 3
    assert "MISMATCH" in bad.stderr and "not installed" not in bad.stdout + bad.stderr


def test_verify_accepts_a_directory_as_ingest_does(initialized: Custody, clip_dir: Path, tmp_path: Path) -> None:
    assert initialized("ingest", str(clip_dir)).exit_code == 0
    files = sorted(str(p) for p in clip_dir.rglob("*") if p.is_file())
    result = initialized("verify", str(clip_dir), "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["ref"] for r in records] == files
    assert all(r["ok"] and r["file_matches"] for r in records)
    text = initialized("verify", str(clip_dir))
    assert text.exit_code == 0 and len(text.stdout.splitlines()) == len(files)
    stranger = clip_dir / "zz-not-preserved.mp4"
    stranger.write_bytes(b"never ingested")
    os.mkfifo(clip_dir / "zz-pipe")
    mixed = initialized("verify", str(clip_dir), "--json")
    assert mixed.exit_code == 3
    by_ref = {r["ref"]: r for r in json.loads(mixed.stdout)}
    assert by_ref[str(stranger)]["findings"][0]["kind"] == "not-preserved"
    assert "FIFO" in by_ref[str(clip_dir / "zz-pipe")]["findings"][0]["message"]
    assert all(by_ref[f]["ok"] for f in files)


def test_install_prints_no_license_deprecation_warnings(tmp_path: Path) -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'license = "Apache-2.0"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for package in ("custody", "storage", "cli"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(source)],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    output = built.stdout + built.stderr
    assert "deprecated" not in output.lower(), output
    assert "license" not in output.lower(), output
    assert list(tmp_path.glob("custody-*.whl"))

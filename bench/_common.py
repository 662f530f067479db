"""Shared helpers for the benchmarks: arguments, temp files, timing, medians, tables."""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

GIB = 1 << 30
MIB = 1 << 20


@dataclass
class Result:
    """One line of a summary table."""

    bench: str
    metric: str
    value: str
    target: str
    passed: bool


def custody_bin() -> str:
    """$CUSTODY_BIN, else the `custody` next to this Python, else `custody` on PATH; its Python
    modules byte-compiled first (see ``byte_compile``)."""
    explicit = os.environ.get("CUSTODY_BIN")
    if explicit:
        found = shutil.which(explicit)
        if not found:
            sys.exit(f"CUSTODY_BIN={explicit} is not an executable")
        return byte_compile(found)
    beside = Path(sys.executable).parent / "custody"
    if beside.is_file() and os.access(beside, os.X_OK):
        return byte_compile(str(beside))
    found = shutil.which("custody")
    if found:
        return byte_compile(found)
    sys.exit("custody executable not found: set CUSTODY_BIN or run with the project's venv Python")


def byte_compile(custody: str) -> str:
    """Write the bytecode of the project's packages, as a regular (non-editable) install does,
    so that no timed run compiles source: an editable install, or PYTHONDONTWRITEBYTECODE in the
    environment, would otherwise make every run recompile what changed. Untimed."""
    with open(custody, "rb") as handle:
        first = handle.readline().decode(errors="replace").strip()
    python = first[2:].strip() if first.startswith("#!") else sys.executable
    where = subprocess.run(
        [python, "-c", "import custody, os; print(os.path.dirname(os.path.dirname(custody.__file__)))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    packages = [str(Path(where) / name) for name in ("custody", "storage", "cli") if (Path(where) / name).is_dir()]
    subprocess.run([python, "-m", "compileall", "-q", *packages], check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    return custody


def require(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        sys.exit(f"{tool} not found on PATH")
    return found


def parser(description: str, default_size_gib: float) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--size-gib", type=float, default=default_size_gib,
                   help=f"size of the test file in GiB (default {default_size_gib:g})")
    p.add_argument("--runs", type=int, default=3, help="timed rounds (default 3; minimum 3)")
    p.add_argument("--dir", default=None, help="parent of the temporary work directory (default: /tmp)")
    return p


def check_args(args: argparse.Namespace) -> None:
    if args.runs < 3:
        sys.exit("--runs must be at least 3 (medians of fewer runs mean little)")


def make_writable(path: Path) -> None:
    """Stored objects and their directories may be read-only; allow deleting them."""
    for directory, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(directory, name)
            if not os.path.islink(full):
                os.chmod(full, os.stat(full).st_mode | stat.S_IWUSR)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        make_writable(path)
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        path.unlink()


@contextmanager
def workdir(parent: str | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="custody-bench-", dir=parent or "/tmp"))
    try:
        yield path
    finally:
        remove(path)


def random_file(path: Path, size: int, chunk: int = 64 * MIB) -> Path:
    """Write ``size`` random bytes to ``path``."""
    print(f"  generating {size / GIB:.3g} GiB of random bytes at {path} ...", flush=True)
    with open(path, "wb") as handle:
        left = size
        while left:
            n = min(chunk, left)
            handle.write(os.urandom(n))
            left -= n
    return path


def warm(path: Path, chunk: int = 16 * MIB) -> None:
    """Read the file once so that it sits in the page cache."""
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(chunk)
        while handle.readinto(buffer):
            pass


def sync() -> None:
    subprocess.run(["sync"], check=True)


def run(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), stdout=kwargs.pop("stdout", subprocess.DEVNULL),
                          stderr=subprocess.PIPE, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def timed(*cmds: Sequence[str], **kwargs: Any) -> float:
    """Wall time in seconds of running the commands one after another (each must succeed)."""
    start = time.perf_counter()
    for cmd in cmds:
        run(cmd, **kwargs)
    return time.perf_counter() - start


def interleaved(runs: int, ours: Callable[[int], float], theirs: Callable[[int], float]) -> tuple[list[float], list[float]]:
    """Run ours and theirs once per round, alternating which goes first, and print each round."""
    mine: list[float] = []
    stock: list[float] = []
    for i in range(runs):
        order = [(ours, mine), (theirs, stock)]
        if i % 2:
            order.reverse()
        for fn, into in order:
            into.append(fn(i))
        print(f"  round {i + 1}/{runs}: ours {mine[-1]:.3f} s   stock {stock[-1]:.3f} s   "
              f"ours/stock {mine[-1] / stock[-1]:.3f}", flush=True)
    return mine, stock


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_runs(values: Sequence[float], unit: str = "s", digits: int = 3) -> str:
    return ("[" + ", ".join(f"{v:.{digits}f}" for v in values) + f"] {unit}").rstrip()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def summary(results: Sequence[Result]) -> str:
    rows = [(r.bench, r.metric, r.value, r.target, "PASS" if r.passed else "FAIL") for r in results]
    return table(("bench", "metric", "measured", "target", "result"), rows)


def finish(results: Sequence[Result]) -> None:
    """Print the summary table; exit 1 if any target was missed."""
    print()
    print(summary(results))
    sys.exit(0 if all(r.passed for r in results) else 1)


REPO = Path(__file__).resolve().parents[1]
RGW_START = REPO / "infra" / "dev" / "start-ceph-rgw.sh"
RGW_STOP = REPO / "infra" / "dev" / "stop-ceph-rgw.sh"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def ceph_rgw(parent: Path, store_gb: int) -> Iterator[tuple[Path, dict[str, str]]]:
    """A bluestore Ceph cluster with radosgw (infra/dev/start-ceph-rgw.sh) in ``parent``/ceph:
    its directory and exported settings; stopped and purged on the way out."""
    import shlex

    directory = parent / "ceph"
    directory.mkdir()
    env = {**os.environ, "CEPH_OBJECTSTORE": "bluestore", "CEPH_STORE_GB": str(store_gb)}
    print(f"  starting Ceph RGW (bluestore, {store_gb} GB) in {directory} ...", flush=True)
    try:
        done = subprocess.run([str(RGW_START), str(directory), str(free_port())], env=env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{RGW_START.name} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        exported: dict[str, str] = {}
        for line in done.stdout.splitlines():
            words = shlex.split(line)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                name, value = words[1].split("=", 1)
                exported[name] = value
        yield directory, exported
    finally:
        subprocess.run([str(RGW_STOP), str(directory), "--purge"], capture_output=True, timeout=300)
        remove(directory)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Replace the whole process environment for the block (boto3 reads it), then restore it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)

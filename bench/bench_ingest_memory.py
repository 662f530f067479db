"""Peak resident memory of `custody ingest FILE` (fresh data directory each run). Target <= 200 MB.

Each command runs in a fresh process under GNU `/usr/bin/time -f %M` (its ru_maxrss). Without
it, a fresh Python wrapper reports resource.getrusage(RUSAGE_CHILDREN).ru_maxrss instead; that
figure has a floor of the wrapper's own RSS (~14 MB), because Linux carries the peak RSS of the
forking process into the child across exec. `cp FILE DEST` is measured the same way, for reference.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (GIB, Result, check_args, custody_bin, finish, fmt_runs, median,  # noqa: E402
                     parser, random_file, remove, require, run, sync, warm, workdir)

TARGET_MB = 200

# Runs the command given as arguments; prints its peak RSS in KiB (Linux ru_maxrss unit).
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


GNU_TIME = "/usr/bin/time"


def rss_method() -> str:
    return GNU_TIME if os.access(GNU_TIME, os.X_OK) else "python getrusage wrapper"


def peak_rss_mb(cmd: Sequence[str], tmp: Path) -> float:
    """Peak RSS of one run of ``cmd``, in MB (10^6 bytes)."""
    if rss_method() == GNU_TIME:
        report = tmp / "time.out"
        run([GNU_TIME, "-f", "%M", "-o", str(report), *cmd])
        kib = report.read_text().split()[-1]
    else:
        kib = run([sys.executable, "-c", _WRAPPER, *cmd], stdout=subprocess.PIPE).stdout.split()[-1]
    return int(kib) * 1024 / 1e6


def bench(args: argparse.Namespace) -> list[Result]:
    custody, cp = custody_bin(), require("cp")
    size = int(args.size_gib * GIB)
    print(f"bench_ingest_memory: peak RSS of custody ingest, {args.size_gib:g} GiB, {args.runs} rounds")
    print(f"  custody: {custody}")
    print(f"  peak RSS measured with: {rss_method()}")
    ours: list[float] = []
    stock: list[float] = []
    with workdir(args.dir) as tmp:
        data = random_file(tmp / "clip.bin", size)
        warm(data)
        home, copy = tmp / "home", tmp / "copy.bin"
        for i in range(args.runs):
            remove(home)
            remove(copy)
            run([custody, "--home", str(home), "init"])
            sync()
            ours.append(peak_rss_mb([custody, "--home", str(home), "ingest", str(data)], tmp))
            stock.append(peak_rss_mb([cp, str(data), str(copy)], tmp))
            print(f"  round {i + 1}/{args.runs}: custody ingest {ours[-1]:.1f} MB   cp {stock[-1]:.1f} MB", flush=True)
        remove(home)
        remove(copy)
    peak = max(ours)
    print(f"  custody ingest peak RSS: {fmt_runs(ours, 'MB', 1)}  median {median(ours):.1f} MB  max {peak:.1f} MB")
    print(f"  cp peak RSS:             {fmt_runs(stock, 'MB', 1)}  median {median(stock):.1f} MB")
    return [Result("ingest_memory", f"peak RSS of custody ingest, max of runs ({args.size_gib:g} GiB)",
                   f"{peak:.1f} MB", f"<= {TARGET_MB} MB", peak <= TARGET_MB)]


def main() -> None:
    args = parser(__doc__.splitlines()[0], 4).parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

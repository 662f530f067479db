"""`custody ingest FILE` into a fresh local store vs `cp FILE DEST && sync`: time ratio ours/theirs.

The source stays in the page cache for both. Before every timed command the previous run's copy
or data directory is deleted and `sync` is run, so earlier writeback does not bleed in. Each
custody run gets a fresh data directory (`custody init`, untimed), so the file is really stored.
Target: ours/theirs time <= 1.15.

Also timed each round, for context: the stock floor for the two digests the ingest must compute,
`b3sum --num-threads 1 FILE` and `openssl dgst -sha256 FILE` run side by side (no copy, no
write). When that floor alone is above 1.15 x (cp && sync), the target cannot be met on this
machine by any tool that computes both digests; the bench says so.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (GIB, Result, check_args, custody_bin, finish, fmt_runs, interleaved,  # noqa: E402
                     median, parser, random_file, remove, require, run, sync, timed, warm, workdir)

TARGET = 1.15


def bench(args: argparse.Namespace) -> list[Result]:
    custody, cp = custody_bin(), require("cp")
    size = int(args.size_gib * GIB)
    print(f"bench_ingest_local: custody ingest vs cp && sync, {args.size_gib:g} GiB, {args.runs} rounds")
    print(f"  custody: {custody}")
    with workdir(args.dir) as tmp:
        data = random_file(tmp / "clip.bin", size)
        warm(data)
        home, copy = tmp / "home", tmp / "copy.bin"

        def ours(_: int) -> float:
            remove(home)
            run([custody, "--home", str(home), "init"])
            sync()
            seconds = timed([custody, "--home", str(home), "ingest", str(data)])
            stored = list((home / "store" / "objects").rglob("*"))
            if not any(p.is_file() and p.stat().st_size == size for p in stored):
                raise RuntimeError("custody ingest did not store the file")
            return seconds

        def theirs(_: int) -> float:
            remove(copy)
            sync()
            return timed([cp, str(data), str(copy)], ["sync"])

        mine, stock = interleaved(args.runs, ours, theirs)
        b3sum, openssl = shutil.which("b3sum"), shutil.which("openssl")
        floor = [hash_floor(b3sum, openssl, data) for _ in range(args.runs)] if b3sum and openssl else []
        remove(home)
        remove(copy)
    mb = size / 1e6
    ratio = median(mine) / median(stock)
    print(f"  custody ingest: {fmt_runs(mine)}  median {median(mine):.3f} s = {mb / median(mine):.0f} MB/s")
    print(f"  cp && sync:     {fmt_runs(stock)}  median {median(stock):.3f} s = {mb / median(stock):.0f} MB/s")
    print(f"  per-round time ratios: {fmt_runs([o / t for o, t in zip(mine, stock)], unit='')}")
    print(f"  time ratio ours/cp+sync (of medians): {ratio:.3f}")
    if floor:
        floor_ratio = median(floor) / median(stock)
        print(f"  stock hash floor (b3sum -t1 || openssl sha256, no copy, no write): {fmt_runs(floor)}  "
              f"median {median(floor):.3f} s = {floor_ratio:.3f} x cp+sync; custody = {median(mine) / median(floor):.3f} x floor")
        if floor_ratio > TARGET:
            print(f"  the floor alone is above the target ({TARGET} x cp+sync): no tool that computes both digests "
                  "can meet it on this machine")
    else:
        print("  stock hash floor not measured: b3sum or openssl is missing")
    return [Result("ingest_local", f"time custody/(cp+sync) ({args.size_gib:g} GiB)", f"{ratio:.3f}",
                   f"<= {TARGET}", ratio <= TARGET)]


def hash_floor(b3sum: str, openssl: str, data: Path) -> float:
    """Wall time of b3sum (one thread) and openssl's SHA-256 of ``data``, run side by side."""
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
             for cmd in ([b3sum, "--num-threads", "1", str(data)], [openssl, "dgst", "-sha256", str(data)])]
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("b3sum or openssl failed")
    return time.perf_counter() - start


def main() -> None:
    args = parser(__doc__.splitlines()[0], 2).parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

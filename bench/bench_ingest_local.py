"""`custody ingest FILE` into a fresh local store vs `cp FILE DEST && sync`: time ratio ours/theirs.

The source stays in the page cache for both. Before every timed command the previous run's copy
or data directory is deleted and `sync` is run, so earlier writeback does not bleed in. Each
custody run gets a fresh data directory (`custody init`, untimed), so the file is really stored.
Target: ours/theirs time <= 1.15.
"""

from __future__ import annotations

import argparse
import sys
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
        remove(home)
        remove(copy)
    mb = size / 1e6
    ratio = median(mine) / median(stock)
    print(f"  custody ingest: {fmt_runs(mine)}  median {median(mine):.3f} s = {mb / median(mine):.0f} MB/s")
    print(f"  cp && sync:     {fmt_runs(stock)}  median {median(stock):.3f} s = {mb / median(stock):.0f} MB/s")
    print(f"  per-round time ratios: {fmt_runs([o / t for o, t in zip(mine, stock)], unit='')}")
    print(f"  time ratio ours/cp+sync (of medians): {ratio:.3f}")
    return [Result("ingest_local", f"time custody/(cp+sync) ({args.size_gib:g} GiB)", f"{ratio:.3f}",
                   f"<= {TARGET}", ratio <= TARGET)]


def main() -> None:
    args = parser(__doc__.splitlines()[0], 2).parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

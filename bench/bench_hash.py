"""`custody hash FILE` vs `b3sum FILE` on a file in the page cache: throughput ratio ours/theirs.

Wall time of the whole process is measured, so interpreter start-up counts against us.
Target: ours/theirs throughput >= 0.85.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (GIB, Result, check_args, custody_bin, finish, fmt_runs, interleaved,  # noqa: E402
                     median, parser, random_file, require, run, timed, warm, workdir)

TARGET = 0.85


def bench(args: argparse.Namespace) -> list[Result]:
    custody, b3sum = custody_bin(), require("b3sum")
    size = int(args.size_gib * GIB)
    print(f"bench_hash: custody hash vs b3sum, {args.size_gib:g} GiB in page cache, {args.runs} rounds")
    print(f"  custody: {custody}")
    with workdir(args.dir) as tmp:
        data = random_file(tmp / "clip.bin", size)
        warm(data)
        # One untimed run of each: confirms both print the same digest.
        ours_out = run([custody, "hash", str(data)], stdout=-1).stdout.split()[0]
        theirs_out = run([b3sum, str(data)], stdout=-1).stdout.split()[0]
        if ours_out != theirs_out:
            raise RuntimeError(f"digests differ: custody {ours_out}, b3sum {theirs_out}")
        ours, theirs = interleaved(
            args.runs,
            lambda _: timed([custody, "hash", str(data)]),
            lambda _: timed([b3sum, str(data)]),
        )
        # For reading the result: the fixed cost of starting custody (hash of an empty file).
        empty = tmp / "empty.bin"
        empty.touch()
        startup = [timed([custody, "hash", str(empty)]) for _ in range(args.runs)]
    mb = size / 1e6
    ratio = median(theirs) / median(ours)  # throughput ours / throughput theirs
    print(f"  custody hash: {fmt_runs(ours)}  median {median(ours):.3f} s = {mb / median(ours):.0f} MB/s")
    print(f"  b3sum:        {fmt_runs(theirs)}  median {median(theirs):.3f} s = {mb / median(theirs):.0f} MB/s")
    print(f"  custody hash of an empty file (start-up): {fmt_runs(startup)}  median {median(startup):.3f} s")
    print(f"  per-round throughput ratios: {fmt_runs([t / o for o, t in zip(ours, theirs)], unit='')}")
    print(f"  throughput ratio ours/b3sum (of medians): {ratio:.3f}")
    return [Result("hash", f"throughput custody/b3sum ({args.size_gib:g} GiB)", f"{ratio:.3f}",
                   f">= {TARGET}", ratio >= TARGET)]


def main() -> None:
    args = parser(__doc__.splitlines()[0], 4).parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

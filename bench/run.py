"""Run every benchmark and print one summary table (exit 1 if any target is missed or a bench fails).

    python bench/run.py                    # full size: 4 GiB / 2 GiB / 4 GiB / 1 GiB, 3 rounds each
    python bench/run.py --size-gib 0.25    # quick smoke run: every bench on a 0.25 GiB file
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_hash  # noqa: E402
import bench_ingest_local  # noqa: E402
import bench_ingest_memory  # noqa: E402
import bench_ingest_s3  # noqa: E402
from _common import Result, check_args, finish  # noqa: E402

BENCHES = (  # (module, default size in GiB)
    (bench_hash, 4.0),
    (bench_ingest_local, 2.0),
    (bench_ingest_memory, 4.0),
    (bench_ingest_s3, 1.0),
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-gib", type=float, default=None, help="one size for every bench (default: each bench's own)")
    p.add_argument("--runs", type=int, default=3, help="timed rounds per bench (default 3; minimum 3)")
    p.add_argument("--dir", default=None, help="parent of the temporary work directories (default: /tmp)")
    args = p.parse_args()
    check_args(args)
    results: list[Result] = []
    for module, default_size in BENCHES:
        name = module.__name__
        bench_args = argparse.Namespace(size_gib=args.size_gib or default_size, runs=args.runs, dir=args.dir)
        try:
            results.extend(module.bench(bench_args))
        except Exception as exc:  # report and go on with the other benches
            traceback.print_exc()
            results.append(Result(name.removeprefix("bench_"), "error", str(exc)[:60], "-", False))
        print()
    print("=== summary ===")
    finish(results)


if __name__ == "__main__":
    main()

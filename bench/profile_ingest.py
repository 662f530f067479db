"""Where the time of `custody ingest` goes, next to `cp FILE DEST && sync` (not a pass/fail bench).

Per round, interleaved, each step after deleting earlier output and `sync`:
  custody ingest (whole process) | hash pass: custody.evidence.hashing.hash_file |
  store pass: storage.local.LocalStore.put, split into its copy loop and its fsync |
  cp FILE DEST, then sync | custody --version (interpreter + CLI start-up).
Needs the project importable: run it with the project's venv Python.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (GIB, check_args, custody_bin, fmt_runs, median, parser, random_file,  # noqa: E402
                     remove, run, sync, table, timed, warm, workdir)

from custody.evidence.hashing import hash_file  # noqa: E402
from storage.base import Retention  # noqa: E402
from storage.local import LocalStore  # noqa: E402

_fsync_seconds = 0.0
_real_fsync = os.fsync


def _counting_fsync(fd: int) -> None:
    global _fsync_seconds
    start = time.perf_counter()
    _real_fsync(fd)
    _fsync_seconds += time.perf_counter() - start


def main() -> None:
    global _fsync_seconds
    args = parser(__doc__.splitlines()[0], 2).parse_args()
    check_args(args)
    custody = custody_bin()
    size = int(args.size_gib * GIB)
    os.fsync = _counting_fsync  # LocalStore.put calls os.fsync; count the time spent in it
    steps: dict[str, list[float]] = {k: [] for k in (
        "custody ingest (process)", "hash pass (hash_file)", "store pass (put) total",
        "  put: copy loop (read+sha256+write)", "  put: fsync calls", "cp", "sync after cp",
        "cp + sync", "custody --version")}
    with workdir(args.dir) as tmp:
        data = random_file(tmp / "clip.bin", size)
        warm(data)
        home, store_root, copy = tmp / "home", tmp / "store", tmp / "copy.bin"
        for i in range(args.runs):
            remove(home)
            run([custody, "--home", str(home), "init"])
            sync()
            steps["custody ingest (process)"].append(timed([custody, "--home", str(home), "ingest", str(data)]))
            remove(home)
            sync()

            start = time.perf_counter()
            digests = hash_file(data)
            steps["hash pass (hash_file)"].append(time.perf_counter() - start)

            store = LocalStore.create(store_root)
            retention = Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(days=1))
            _fsync_seconds = 0.0
            with open(data, "rb", buffering=0) as source:
                start = time.perf_counter()
                store.put(f"evidence/{digests.blake3}", source, digests.size, sha256=digests.sha256, retention=retention)
                total = time.perf_counter() - start
            steps["store pass (put) total"].append(total)
            steps["  put: fsync calls"].append(_fsync_seconds)
            steps["  put: copy loop (read+sha256+write)"].append(total - _fsync_seconds)
            remove(store_root)
            sync()

            cp_s = timed(["cp", str(data), str(copy)])
            sync_s = timed(["sync"])
            steps["cp"].append(cp_s)
            steps["sync after cp"].append(sync_s)
            steps["cp + sync"].append(cp_s + sync_s)
            remove(copy)
            sync()

            steps["custody --version"].append(timed([custody, "--version"]))
            print(f"  round {i + 1}/{args.runs} done", flush=True)
    mb = size / 1e6
    rows = [(name, f"{median(v):.3f}", "-" if "version" in name else f"{mb / median(v):.0f}", fmt_runs(v))
            for name, v in steps.items()]
    print()
    print(f"profile_ingest: {args.size_gib:g} GiB, {args.runs} rounds (seconds; MB/s of the file size)")
    print(table(("step", "median s", "MB/s", "runs"), rows))


if __name__ == "__main__":
    main()

"""`custody audit`: full vs b3sum on the local store, quick and full on Ceph RGW (vs aws s3 cp).

Three measurements, each on data made once per bench and stored by `custody ingest` itself:

1. local, full vs b3sum: `custody audit --level full` of a local store holding FILES objects
   (default 64 x 256 MiB = 16 GiB, all in the page cache) against `b3sum` over the very same
   object files under store/objects/evidence/. An untimed b3sum run first checks that every
   file's BLAKE3 is its name. The default is 16 GiB (64 x 256 MiB) because every audit run
   pays a fixed cost that b3sum does not (about 0.45-0.6 s here: interpreter and SQLAlchemy
   start-up, opening the ledger, the audited event and its checkpoint, SQLite's WAL checkpoint
   and the interpreter's teardown at exit; printed separately as the time of a quick audit of
   the same store). A full audit of a local store starts hashing while the ledger opens
   (``custody.audit.rehash.LocalPrehash``), which hides part of it. Needs 16 GiB of free page cache. Target: throughput ours/b3sum >= 0.85 (ratio of median times).
2. Ceph RGW, quick: `custody audit --level quick` over OBJECTS small objects (default 10,000 of
   4 KiB), with --workers 1 and 8; reported as objects per second, with the CPU time per
   object of the custody process and of the Ceph daemons (no stock tool does this; no target).
   The objects are preserved in-process by custody's own ``Ingestor`` on 8 threads (the code
   path of `custody ingest` without its per-file media inspection, which would take an hour).
3. Ceph RGW, full vs `aws s3 cp --recursive`: `custody audit --level full --workers 8` of a store
   holding footage-sized objects (default 16 x 128 MiB = 2 GiB) against `aws s3 cp --recursive`
   downloading the same objects from the same server into a local directory (emptied and
   synced before every aws round, untimed). An untimed aws run first checks that every
   downloaded file's BLAKE3 is its key's name. Target: throughput ours/aws >= 0.9.
   With --small-reference, also (no target) the same comparison over the OBJECTS small objects,
   where the audit's 3 metadata requests per object (HEAD, retention, legal hold) dominate.

The Ceph cluster (bluestore, infra/dev/start-ceph-rgw.sh) is started in the work directory and
purged at the end. The dev script starts radosgw with ``tcp_nodelay=1`` on the beast frontend:
without it every response with a body waits ~40 ms for a delayed ACK, which would make a quick
audit of 10,000 objects take ~17 min.
Wall time of whole processes is measured: start-up, the ledger verification, the canary, the
audited event and its checkpoint all count against custody. Rounds alternate
which tool goes first; each round is printed; results are medians of at least 3 rounds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (GIB, MIB, Result, ceph_rgw, environment, check_args, custody_bin, finish, fmt_runs, interleaved,  # noqa: E402
                     median, random_file, remove, require, run, sync, timed, warm, workdir)

REPO = Path(__file__).resolve().parents[1]
LOCAL_TARGET = 0.85
S3_TARGET = 0.9
DEFAULTS = {
    "size_gib": 16.0,
    "file_mib": 256,
    "objects": 10_000,
    "object_kib": 4,
    "s3_gib": 2.0,
    "s3_file_mib": 128,
    "ingest_threads": 8,
    "skip_local": False,
    "skip_s3": False,
    "small_reference": False,
}


def option(args: argparse.Namespace, name: str) -> Any:
    """An option of this bench, or its default when run.py passes only the common ones."""
    return getattr(args, name, None) if getattr(args, name, None) is not None else DEFAULTS[name]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CUSTODY_")) and k != "S3_ENDPOINT_URL"}
    env.update(extra)
    return env


def make_files(directory: Path, count: int, size: int) -> None:
    directory.mkdir(parents=True)
    if size >= 16 * MIB:
        for index in range(count):
            random_file(directory / f"clip-{index:05d}.mp4", size)
        return
    for index in range(count):
        (directory / f"clip-{index:05d}.mp4").write_bytes(os.urandom(size))


def check_names(lines: str) -> int:
    """Every `b3sum` line names a file whose name is its digest; returns how many lines."""
    count = 0
    for line in lines.splitlines():
        digest, path = line.split(maxsplit=1)
        if Path(path).name != digest:
            raise RuntimeError(f"{path}: BLAKE3 {digest} is not its name")
        count += 1
    return count


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


# ---- 1. local store ----------------------------------------------------------------------------


def bench_local(args: argparse.Namespace, custody: str) -> list[Result]:
    b3sum = require("b3sum")
    file_size = int(option(args, "file_mib")) * MIB
    total = int(float(option(args, "size_gib")) * GIB)
    count = max(1, round(total / file_size))
    print(f"bench_audit local: custody audit --level full vs b3sum, {count} x {file_size // MIB} MiB, {args.runs} rounds")
    available = available_bytes()
    if available < count * file_size + GIB:
        print(f"  warning: only {available / GIB:.1f} GiB of memory available: the objects will not all stay "
              "in the page cache, and both tools will partly read from disk", flush=True)
    with workdir(args.dir) as tmp:
        home = tmp / "home"
        env = clean_env(CUSTODY_HOME=str(home), CUSTODY_ACTOR="bench")
        run([custody, "init"], env=env)
        source = tmp / "export"
        make_files(source, count, file_size)
        began = time.perf_counter()
        run([custody, "ingest", str(source)], env=env)
        print(f"  ingested in {time.perf_counter() - began:.1f} s", flush=True)
        remove(source)
        objects = sorted(str(p) for p in (home / "store" / "objects" / "evidence").iterdir())
        for path in objects:
            warm(Path(path))
        if check_names(run([b3sum, *objects], stdout=subprocess.PIPE).stdout) != count:
            raise RuntimeError("b3sum did not hash every object")
        audit = [custody, "audit", "--level", "full", "--workers", "8"]
        run(audit, env=env)
        ours, theirs = interleaved(args.runs, lambda _: timed(audit, env=env), lambda _: timed([b3sum, *objects]))
        fixed = [timed([custody, "audit", "--level", "quick"], env=env) for _ in range(args.runs)]
    gb = count * file_size / 1e9
    ratio = median(theirs) / median(ours)
    print(f"  custody audit --level full: {fmt_runs(ours)}  median {median(ours):.3f} s = {gb / median(ours):.2f} GB/s")
    print(f"  b3sum:                      {fmt_runs(theirs)}  median {median(theirs):.3f} s = {gb / median(theirs):.2f} GB/s")
    print(f"  custody audit --level quick on the same store (everything but the hashing: start-up, "
          f"ledger, canary, event, checkpoint): {fmt_runs(fixed)}  median {median(fixed):.3f} s")
    print(f"  throughput ratio ours/b3sum (of medians): {ratio:.3f}")
    return [Result("audit_local", f"full/b3sum throughput ({count} x {file_size // MIB} MiB)", f"{ratio:.3f}",
                   f">= {LOCAL_TARGET}", ratio >= LOCAL_TARGET)]


# ---- 2 and 3. Ceph RGW ---------------------------------------------------------------------------


@contextmanager
def rgw_cluster(parent: Path, store_gb: int) -> Iterator[dict[str, str]]:
    with ceph_rgw(parent, store_gb) as (_directory, exported):
        yield exported


def populate(env: dict[str, str], source: Path, threads: int) -> float:
    """Preserve every file under ``source`` with the project's own ``Ingestor`` (the code path
    of `custody ingest`, without the command line's per-file media inspection), ``threads``
    files at a time, then sign a checkpoint. Returns the wall time."""
    from concurrent.futures import ThreadPoolExecutor

    from custody.home import open_workspace
    from custody.evidence.ingest import Ingestor
    from custody.settings import Settings

    home = Path(env["CUSTODY_HOME"])
    url = tomllib.loads((home / "config.toml").read_text())["store"]
    files = sorted(str(p) for p in source.iterdir())
    began = time.perf_counter()
    with environment(env):
        workspace = open_workspace(Settings(home=home, db_url=Settings.default_db_url(home), store_url=url,
                                            actor="bench"))

        def ingest(chunk: list[str]) -> list[str]:
            results = Ingestor(workspace.ledger, workspace.store, actor="bench").run(chunk)
            return [f"{r.path}: {r.status} {r.reason}" for r in results if r.status != "recorded"]

        chunks = [files[i::threads] for i in range(threads)]
        with ThreadPoolExecutor(threads) as pool:
            problems = [line for lines in pool.map(ingest, chunks) for line in lines]
        if problems:
            raise RuntimeError("ingest failed: " + "; ".join(problems[:5]))
        workspace.seal()
    return time.perf_counter() - began


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds so far of these processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measured(cmd: list[str], env: dict[str, str], server: list[int]) -> tuple[float, float, float]:
    """(wall seconds, client CPU seconds, server CPU seconds) of one run of ``cmd``."""
    before = cpu_of(server)
    began = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}: {stderr[-1000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, cpu_of(server) - before


def aws_download(aws: str, endpoint: str, url: str, target: Path, env: dict[str, str]) -> Callable[[int], float]:
    def download(_: int) -> float:
        remove(target)
        target.mkdir()
        sync()
        return timed([aws, "s3", "cp", "--recursive", "--only-show-errors", "--endpoint-url", endpoint, url,
                      str(target)], env=env)
    return download


def bench_s3(args: argparse.Namespace, custody: str) -> list[Result]:
    aws = str(Path(sys.executable).parent / "aws")
    if not os.access(aws, os.X_OK):
        aws = require("aws")
    b3sum = require("b3sum")
    objects = int(option(args, "objects"))
    object_size = int(option(args, "object_kib")) * 1024
    big_size = int(option(args, "s3_file_mib")) * MIB
    big_count = max(1, round(float(option(args, "s3_gib")) * GIB / big_size))
    threads = int(option(args, "ingest_threads"))
    store_gb = max(12, int(big_count * big_size * 1.5 / GIB) + 8)
    print(f"bench_audit s3: Ceph RGW, quick over {objects} x {object_size // 1024} KiB, "
          f"full vs aws s3 cp over {big_count} x {big_size // MIB} MiB, {args.runs} rounds")
    results: list[Result] = []
    with workdir(args.dir) as tmp, rgw_cluster(tmp, store_gb) as rgw:
        endpoint = rgw["S3_ENDPOINT_URL"]
        server = [int(line.split()[1]) for line in (tmp / "ceph" / "pids").read_text().splitlines() if line.strip()]
        bucket = f"bench-audit-{uuid.uuid4().hex[:8]}"
        base = clean_env(
            AWS_ACCESS_KEY_ID=rgw["AWS_ACCESS_KEY_ID"], AWS_SECRET_ACCESS_KEY=rgw["AWS_SECRET_ACCESS_KEY"],
            AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true", CUSTODY_ACTOR="bench",
        )
        small_env = {**base, "CUSTODY_HOME": str(tmp / "home-small")}
        big_env = {**base, "CUSTODY_HOME": str(tmp / "home-large")}
        run([custody, "init", "--create-bucket", "--store",
             f"s3://{bucket}/small?endpoint_url={endpoint}&region=us-east-1"], env=small_env)
        run([custody, "init", "--store", f"s3://{bucket}/large?endpoint_url={endpoint}&region=us-east-1"], env=big_env)

        make_files(tmp / "small", objects, object_size)
        seconds = populate(small_env, tmp / "small", threads)
        print(f"  ingested {objects} small objects in {seconds:.1f} s ({objects / seconds:.0f}/s, "
              f"{threads} threads)", flush=True)
        remove(tmp / "small")
        quick: dict[int, list[tuple[float, float, float]]] = {1: [], 8: []}
        for index in range(args.runs):
            for workers in ((1, 8) if index % 2 == 0 else (8, 1)):
                quick[workers].append(measured([custody, "audit", "--level", "quick", "--workers", str(workers)],
                                               small_env, server))
            print(f"  round {index + 1}/{args.runs}: quick --workers 1 {quick[1][-1][0]:.2f} s   "
                  f"--workers 8 {quick[8][-1][0]:.2f} s", flush=True)
        for workers, runs in quick.items():
            wall = [r[0] for r in runs]
            rate = objects / median(wall)
            print(f"  quick, {workers} worker(s): {fmt_runs(wall)}  median {median(wall):.2f} s = {rate:.0f} objects/s; "
                  f"CPU per object: client {median([r[1] for r in runs]) / objects * 1e3:.1f} ms, "
                  f"Ceph {median([r[2] for r in runs]) / objects * 1e3:.1f} ms")
            results.append(Result("audit_s3_quick", f"objects/s, {workers} worker(s) ({objects} objects)",
                                  f"{rate:.0f}", "-", True))

        make_files(tmp / "large", big_count, big_size)
        seconds = populate(big_env, tmp / "large", 2)
        print(f"  ingested {big_count} x {big_size // MIB} MiB in {seconds:.1f} s", flush=True)
        remove(tmp / "large")
        download = tmp / "download"
        comparisons = [("large", big_env, "large", big_count, big_size)]
        if option(args, "small_reference"):
            comparisons.append(("small", small_env, "small", objects, object_size))
        for label, env, prefix, count, size in comparisons:
            theirs_fn = aws_download(aws, endpoint, f"s3://{bucket}/{prefix}/evidence/", download, env)
            theirs_fn(0)
            fetched = sorted(str(p) for p in download.iterdir())
            if check_names(run([b3sum, *fetched], stdout=subprocess.PIPE).stdout) != count:
                raise RuntimeError(f"aws s3 cp did not download all {count} {label} objects")
            audit = [custody, "audit", "--level", "full", "--workers", "8"]
            print(f"  full vs aws s3 cp --recursive, {count} x {size // 1024} KiB:", flush=True)
            ours, theirs = interleaved(args.runs, lambda _: timed(audit, env=env), theirs_fn)
            mb = count * size / 1e6
            ratio = median(theirs) / median(ours)
            print(f"  custody audit --level full: {fmt_runs(ours)}  median {median(ours):.2f} s = {mb / median(ours):.0f} MB/s")
            print(f"  aws s3 cp --recursive:      {fmt_runs(theirs)}  median {median(theirs):.2f} s = {mb / median(theirs):.0f} MB/s")
            print(f"  throughput ratio ours/aws (of medians): {ratio:.3f}")
            if label == "large":
                results.append(Result("audit_s3_full", f"full/aws-cp throughput ({count} x {size // MIB} MiB)",
                                      f"{ratio:.3f}", f">= {S3_TARGET}", ratio >= S3_TARGET))
            else:
                results.append(Result("audit_s3_full", f"full/aws-cp throughput ({count} x {size // 1024} KiB)",
                                      f"{ratio:.3f}", "- (reference)", True))
            remove(download)
    return results


def bench(args: argparse.Namespace) -> list[Result]:
    custody = custody_bin()
    print(f"  custody: {custody}")
    results: list[Result] = []
    if not option(args, "skip_local"):
        results.extend(bench_local(args, custody))
    if not option(args, "skip_s3"):
        results.extend(bench_s3(args, custody))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-gib", type=float, default=DEFAULTS["size_gib"],
                   help=f"local store: total size (default {DEFAULTS['size_gib']:g})")
    p.add_argument("--file-mib", type=int, default=DEFAULTS["file_mib"],
                   help=f"local store: size of each object in MiB (default {DEFAULTS['file_mib']})")
    p.add_argument("--objects", type=int, default=DEFAULTS["objects"],
                   help=f"Ceph RGW: number of small objects for quick (default {DEFAULTS['objects']})")
    p.add_argument("--object-kib", type=int, default=DEFAULTS["object_kib"],
                   help=f"Ceph RGW: size of each small object in KiB (default {DEFAULTS['object_kib']})")
    p.add_argument("--s3-gib", type=float, default=DEFAULTS["s3_gib"],
                   help=f"Ceph RGW: total size of the footage-sized objects (default {DEFAULTS['s3_gib']:g})")
    p.add_argument("--s3-file-mib", type=int, default=DEFAULTS["s3_file_mib"],
                   help=f"Ceph RGW: size of each footage-sized object in MiB (default {DEFAULTS['s3_file_mib']})")
    p.add_argument("--ingest-threads", type=int, default=DEFAULTS["ingest_threads"],
                   help="threads that fill the RGW store with custody's Ingestor (default 8)")
    p.add_argument("--skip-local", action="store_true", help="skip the local-store measurement")
    p.add_argument("--skip-s3", action="store_true", help="skip the Ceph RGW measurements")
    p.add_argument("--small-reference", action="store_true",
                   help="also compare full with aws s3 cp over the small objects (no target)")
    p.add_argument("--runs", type=int, default=3, help="timed rounds (default 3; minimum 3)")
    p.add_argument("--dir", default=None, help="parent of the temporary work directory (default: /tmp)")
    args = p.parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

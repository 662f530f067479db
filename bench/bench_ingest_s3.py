"""`custody ingest FILE` into Ceph RGW vs `aws s3 cp FILE s3://bucket/key`: throughput ratio and RSS.

A throwaway single-node Ceph cluster (bluestore, the start script's default) is started with
infra/dev/start-ceph-rgw.sh in a temporary directory and purged at the end. One bucket with
Object Lock (made by `custody init --create-bucket`, default COMPLIANCE retention) receives
both tools' uploads, so the server does the same work for each. Rounds are interleaved,
alternating which tool goes first.

Before every timed command, outside the timing: the first 16 bytes of the file are rewritten
with random bytes (the page cache keeps the rest; otherwise custody would find the bytes
"already-stored"), `sync` is run, and for custody a fresh data directory is made with
`custody init --store ...`. Every custody run is checked afterwards with an independent boto3
client: the object is under evidence/<blake3>, with the file's size and COMPLIANCE retention.

Measured per run: wall time, CPU (user+sys) of the client process, ru_maxrss of the client
process (os.wait4), and the CPU the Ceph daemons used meanwhile.
Targets: throughput custody/aws >= 1.0 (ratio of the median times, aws/custody);
peak RSS of `custody ingest` <= 200 MB (the largest of all runs).

`--store-options` adds parameters to custody's store URL (e.g. `multipart_threshold_mib=64` to
send the file as a multipart upload instead of one PutObject); the summary names the options.

When the throughput target is missed, the bench measures where custody's time goes, in this
process with the project's own functions and the same path as `custody ingest`: the hash pass
(custody.evidence.hashing.hash_stream: BLAKE3 and SHA-256 in one read, feeding S3Store.plan_upload's
per-part digests when the store sends the file multipart) and the upload pass (S3Store.put of
the same file with that plan: the upload, locking and the final stat), each as wall time and
process CPU; then the single-thread CPU price of one pass of MD5, SHA-256, BLAKE3 and CRC32
over the file, to estimate what each client spends on digests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (GIB, MIB, Result, ceph_rgw, environment, check_args, custody_bin, finish, fmt_runs, median,  # noqa: E402
                     parser, random_file, remove, require, run, sync, warm, workdir)

REPO = Path(__file__).resolve().parents[1]
THROUGHPUT_TARGET = 1.0
RSS_TARGET_MB = 200.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    seconds: float
    cpu: float
    rss_mb: float
    server_cpu: float


@dataclass
class Rgw:
    directory: Path
    env: dict[str, str]

    @property
    def endpoint(self) -> str:
        return self.env["S3_ENDPOINT_URL"]

    def pids(self) -> list[int]:
        return [int(line.split()[1]) for line in (self.directory / "pids").read_text().split("\n") if line.strip()]

    def cpu_seconds(self) -> float:
        """User + system CPU so far of the cluster's daemons (monitor, OSD, radosgw)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS


@contextmanager
def rgw_cluster(parent: Path, store_gb: int) -> Iterator[Rgw]:
    with ceph_rgw(parent, store_gb) as (directory, exported):
        yield Rgw(directory, exported)


def client_env(rgw: Rgw) -> dict[str, str]:
    """The environment of both tools: the gateway's keys through the standard AWS chain only."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "CUSTODY_")) and k not in ("S3_ENDPOINT_URL",)}
    env.update(
        AWS_ACCESS_KEY_ID=rgw.env["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=rgw.env["AWS_SECRET_ACCESS_KEY"],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def measured(cmd: Sequence[str], env: dict[str, str], rgw: Rgw) -> tuple[Run, str]:
    """Run ``cmd``; its wall time, CPU and ru_maxrss (from wait4), the daemons' CPU, its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        server_before = rgw.cpu_seconds()
        start = time.perf_counter()
        process = subprocess.Popen(list(cmd), env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        server = rgw.cpu_seconds() - server_before
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {process.returncode}: {stderr.strip()[-2000:]}")
    rss_mb = usage.ru_maxrss * 1024 / 1e6  # ru_maxrss is in KiB on Linux
    return Run(seconds, usage.ru_utime + usage.ru_stime, rss_mb, server), stdout


def new_head(path: Path) -> None:
    """Different content for the next run: rewrite the first 16 bytes (the rest stays cached)."""
    with open(path, "r+b") as handle:
        handle.write(os.urandom(16))


def admin_client(rgw: Rgw) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=rgw.endpoint, region_name="us-east-1",
        aws_access_key_id=rgw.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=rgw.env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )


def cpu_per_pass(data: Path) -> dict[str, float]:
    """Single-thread CPU seconds of one pass of each digest over the (cached) file."""
    import zlib

    import blake3

    def one(update: Any) -> float:
        start = time.process_time()
        with open(data, "rb", buffering=0) as handle:
            while block := handle.read(16 * MIB):
                update(block)
        return time.process_time() - start

    crc = [0]
    return {
        "MD5": one(hashlib.md5().update),
        "SHA-256": one(hashlib.sha256().update),
        "BLAKE3": one(blake3.blake3().update),
        "CRC32": one(lambda block: crc.__setitem__(0, zlib.crc32(block, crc[0]))),
    }


def breakdown(data: Path, size: int, url: str, env: dict[str, str], runs: int) -> list[tuple[str, list[float]]]:
    """Where custody's time goes: its two passes over the file as `custody ingest` makes them,
    timed separately in-process (wall and process CPU, all threads), and the CPU price of each
    digest it computes."""
    from custody.evidence.hashing import hash_stream
    from storage.base import Retention
    from storage.s3 import S3Store

    names = ("hash pass wall (hash_stream + upload plan)", "hash pass cpu",
             "upload pass wall (S3Store.put)", "upload pass cpu")
    steps: dict[str, list[float]] = {name: [] for name in names}
    with environment(env):
        store = S3Store.from_url(url)
        store.ensure_bucket()
        validated = store.validates_payload_sha256()
        for i in range(runs):
            new_head(data)
            sync()
            wall, cpu = time.perf_counter(), time.process_time()
            plan = store.plan_upload(size)
            with open(data, "rb", buffering=0) as handle:
                digests = hash_stream(handle, sink=plan.write if plan is not None else None)
            steps[names[0]].append(time.perf_counter() - wall)
            steps[names[1]].append(time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            with open(data, "rb", buffering=0) as handle:
                store.put(f"breakdown/{uuid.uuid4().hex}", handle, size, sha256=digests.sha256,
                          retention=Retention("COMPLIANCE", store.now() + timedelta(days=1)),
                          metadata={"blake3": digests.blake3}, plan=plan)
            steps[names[2]].append(time.perf_counter() - wall)
            steps[names[3]].append(time.process_time() - cpu)
            print(f"  breakdown {i + 1}/{runs}: " + "   ".join(
                f"{name.split(' (')[0]} {values[-1]:.3f} s" for name, values in steps.items()), flush=True)
    prices = cpu_per_pass(data)
    print("  cpu seconds of one single-thread pass over the file: "
          + ", ".join(f"{name} {seconds:.2f}" for name, seconds in prices.items()))
    # What each client computes over every byte. Plain-HTTP endpoint: aws s3 cp signs every
    # request body (botocore hashes it with SHA-256) and adds a CRC32 checksum. custody signs
    # with digests it already has: the file's SHA-256 for one PutObject, or the plan's per-part
    # SHA-256s (and MD5s, for a server that does not validate payload hashes) for multipart.
    if plan is None:
        ours, what = prices["BLAKE3"] + prices["SHA-256"], "one PutObject signed with the file's SHA-256"
    else:
        ours = prices["BLAKE3"] + 2 * prices["SHA-256"] + (0 if validated else prices["MD5"])
        what = "multipart, per-part SHA-256" + ("" if validated else " and MD5") + " in the hash pass"
    theirs = prices["CRC32"] + prices["SHA-256"]
    print(f"  digest cpu per run, estimated: custody {ours:.2f} s (BLAKE3 + SHA-256 in the hash pass; {what}; "
          f"server validates payload SHA-256: {validated})   aws s3 cp {theirs:.2f} s (CRC32 + SigV4 SHA-256)")
    return list(steps.items())


def bench(args: argparse.Namespace) -> list[Result]:
    custody, aws = custody_bin(), str(Path(sys.executable).parent / "aws")
    args.store_options = getattr(args, "store_options", "")  # bench/run.py does not pass it
    if not os.access(aws, os.X_OK):
        aws = require("aws")
    size = int(args.size_gib * GIB)
    # Everything stays stored (COMPLIANCE): 2 uploads per round plus the breakdown's, with room
    # to spare below the OSD's 95% full mark.
    store_gb = max(12, math.ceil(3.5 * (args.runs + 1) * args.size_gib) + 4)
    print(f"bench_ingest_s3: custody ingest vs aws s3 cp into Ceph RGW, {args.size_gib:g} GiB, {args.runs} rounds")
    print(f"  custody: {custody}\n  aws:     {aws}")
    with workdir(args.dir) as tmp, rgw_cluster(tmp, store_gb) as rgw:
        env = client_env(rgw)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        url = f"s3://{bucket}?endpoint_url={rgw.endpoint}&region=us-east-1"
        if args.store_options:
            url += "&" + args.store_options.lstrip("&")
            print(f"  custody store URL options: {args.store_options}")
        run([custody, "--home", str(tmp / "setup"), "init", "--store", url, "--create-bucket"], env=env)
        admin = admin_client(rgw)
        data = random_file(tmp / "clip.bin", size)
        warm(data)
        home = tmp / "home"

        def ours(i: int) -> Run:
            remove(home)
            run([custody, "--home", str(home), "init", "--store", url], env=env)
            new_head(data)
            sync()
            result, stdout = measured([custody, "--home", str(home), "ingest", "--json", str(data)], env, rgw)
            [record] = json.loads(stdout)
            key = f"evidence/{record['blake3']}"
            head = admin.head_object(Bucket=bucket, Key=key)
            if record["status"] != "recorded" or head["ContentLength"] != size or head.get("ObjectLockMode") != "COMPLIANCE":
                raise RuntimeError(f"custody ingest did not store the file as expected: {record}, {head}")
            log = json.loads(run([custody, "--home", str(home), "log", "--json"], env=env,
                                 stdout=subprocess.PIPE).stdout)
            media = next((e["details"].get("media") for e in log if e["action"] == "ingested"), None) or {}
            if media.get("kind") != "not-media":
                # ingest probes every file with ffprobe; random bytes are normally "not-media"
                print(f"  note: round {i + 1}: custody's media probe said {json.dumps(media)[:300]}", flush=True)
            return result

        def theirs(i: int) -> Run:
            new_head(data)
            sync()
            key = f"aws-cp/{uuid.uuid4().hex}"
            result, _ = measured([aws, "s3", "cp", str(data), f"s3://{bucket}/{key}", "--endpoint-url",
                                  rgw.endpoint, "--only-show-errors"], env, rgw)
            if admin.head_object(Bucket=bucket, Key=key)["ContentLength"] != size:
                raise RuntimeError(f"aws s3 cp did not store {size} bytes under {key}")
            return result

        mine: list[Run] = []
        stock: list[Run] = []
        for i in range(args.runs):
            order = [(ours, mine), (theirs, stock)]
            if i % 2:
                order.reverse()
            for fn, into in order:
                into.append(fn(i))
            o, t = mine[-1], stock[-1]
            print(f"  round {i + 1}/{args.runs}: custody {o.seconds:.3f} s ({size / o.seconds / 1e6:.0f} MB/s, "
                  f"cpu {o.cpu:.2f} s, rss {o.rss_mb:.0f} MB, server cpu {o.server_cpu:.2f} s)   "
                  f"aws {t.seconds:.3f} s ({size / t.seconds / 1e6:.0f} MB/s, cpu {t.cpu:.2f} s, "
                  f"rss {t.rss_mb:.0f} MB, server cpu {t.server_cpu:.2f} s)   "
                  f"throughput custody/aws {t.seconds / o.seconds:.3f}", flush=True)

        mb = size / 1e6
        ours_s, theirs_s = [r.seconds for r in mine], [r.seconds for r in stock]
        ratio = median(theirs_s) / median(ours_s)
        peak = max(r.rss_mb for r in mine)
        print(f"  custody ingest: {fmt_runs(ours_s)}  median {median(ours_s):.3f} s = {mb / median(ours_s):.0f} MB/s")
        print(f"  aws s3 cp:      {fmt_runs(theirs_s)}  median {median(theirs_s):.3f} s = {mb / median(theirs_s):.0f} MB/s")
        print(f"  client cpu s:   custody {fmt_runs([r.cpu for r in mine], unit='')}   "
              f"aws {fmt_runs([r.cpu for r in stock], unit='')}")
        print(f"  server cpu s:   during custody {fmt_runs([r.server_cpu for r in mine], unit='')}   "
              f"during aws {fmt_runs([r.server_cpu for r in stock], unit='')}")
        print(f"  peak RSS MB:    custody {fmt_runs([r.rss_mb for r in mine], unit='', digits=0)}   "
              f"aws {fmt_runs([r.rss_mb for r in stock], unit='', digits=0)}")
        print(f"  throughput ratio custody/aws (of medians): {ratio:.3f}")
        if ratio < THROUGHPUT_TARGET:
            print("  throughput target missed; where custody's time goes:")
            steps = breakdown(data, size, url, env, args.runs)
            for name, values in steps:
                print(f"    {name:<48} {fmt_runs(values)}  median {median(values):.3f} s "
                      f"({mb / median(values):.0f} MB/s)")
            print(f"    {'custody ingest, whole process (above)':<48} median {median(ours_s):.3f} s")
            print(f"    {'aws s3 cp, whole process (above)':<48} median {median(theirs_s):.3f} s")
    return [
        Result("ingest_s3", f"throughput custody/aws ({args.size_gib:g} GiB"
               + (f", {args.store_options}" if args.store_options else "") + ")", f"{ratio:.3f}",
               f">= {THROUGHPUT_TARGET}", ratio >= THROUGHPUT_TARGET),
        Result("ingest_s3", "peak RSS of custody ingest", f"{peak:.0f} MB", f"<= {RSS_TARGET_MB:.0f} MB",
               peak <= RSS_TARGET_MB),
    ]


def main() -> None:
    options = parser(__doc__.splitlines()[0], 1)
    options.add_argument("--store-options", default="",
                         help="extra parameters for custody's store URL, e.g. multipart_threshold_mib=64")
    args = options.parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

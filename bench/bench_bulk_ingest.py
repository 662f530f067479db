"""Bulk ingest of many small clips into the local store: files per second of `custody ingest DIR`
against `cp -r DIR` + `sync` of the same files, and against the bare ffprobe cost per file.

The clips: one real H.264 + AAC clip of about 1 MB made with ffmpeg, remuxed (`-c copy`) with a
different comment tag into COUNT files (default 1,000), so every file is distinct footage to
preserve and every file is probed and gets its packet list. They are made once and kept under
--cache (default /var/tmp/custody-bench-clips/clips-COUNT-v1). Each round ingests them into a
fresh data directory (`custody init` untimed); the files sit in the page cache for every command.
Each ingest's events are checked afterwards: every file recorded, probed (kind video) and with
its packet list attached.

Measured in the same run, median of ROUNDS (at least 3):
- ours: `custody ingest DIR` (one process for the whole directory);
- copy floor: `cp -r DIR DEST` then `sync`;
- ffprobe floor: COUNT bare ffprobe starts (`ffprobe -version`), one after another: what one
  ffprobe run per file costs before it reads anything. With --full-probe also one ffprobe run
  per file doing what custody asked of it before it demuxed in process (program version,
  format, streams and every packet with an Adler-32 of its data).

Target (issue 19): at least 40 files/s on this machine. Printed for what it is, with `uptime`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from _common import MIB, Result, custody_bin, fmt_runs, median, remove, require, run, sync, workdir

TARGET_FILES_PER_S = 40.0
PACKET_ENTRIES = "packet=stream_index,pts,dts,duration,size,pos,flags,data_hash"


def make_clips(directory: Path, count: int, ffmpeg: str) -> list[Path]:
    """The COUNT clips in ``directory`` (made there first if it is not complete)."""
    done = directory.with_name(directory.name + ".complete")  # outside: everything inside is ingested
    if not done.exists():
        partial = directory.with_name(directory.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        base = partial / "base.mp4"
        print(f"  making one ~1 MB clip and {count} remuxed copies in {directory} ...", flush=True)
        run([ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4", "-c:v", "libx264",
             "-preset", "ultrafast", "-b:v", "1800k", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-shortest",
             str(base)])
        for index in range(count):
            target = partial / f"BWC-{index:04d}.mp4"
            if not target.exists():
                run([ffmpeg, "-loglevel", "error", "-y", "-i", str(base), "-map", "0", "-c", "copy",
                     "-metadata", f"comment=clip {index}", str(target)])
        base.unlink()
        shutil.rmtree(directory, ignore_errors=True)
        partial.rename(directory)
        done.touch()
    return sorted(directory.glob("BWC-*.mp4"))


def ingest_round(custody: str, clips: Path, home: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env.update(CUSTODY_HOME=str(home), CUSTODY_ACTOR="bench", CUSTODY_DB="", CUSTODY_STORE="")
    run([custody, "init"], env=env)
    start = time.perf_counter()
    done = subprocess.run([custody, "ingest", "--json", str(clips)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"custody ingest exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    recorded = sum(1 for result in json.loads(done.stdout) if result["status"] == "recorded")
    files = len(list(clips.glob("BWC-*.mp4")))
    if recorded != files:
        raise RuntimeError(f"custody ingest recorded {recorded} of {files} files")
    events = json.loads(subprocess.run([custody, "log", "--json"], env=env, capture_output=True, text=True,
                                       check=True).stdout)
    probed = [e for e in events if e["action"] == "ingested" and e["details"].get("media", {}).get("kind") == "video"
              and "packets" in e["details"].get("attachments", {})]
    if len(probed) != files:
        raise RuntimeError(f"only {len(probed)} of {files} files were probed with a packet list")
    tools = sorted({e["details"]["media"]["tool"] for e in probed})
    remove(home)
    return elapsed, tools


def copy_round(clips: Path, dest: Path) -> float:
    sync()
    start = time.perf_counter()
    run(["cp", "-r", str(clips), str(dest)])
    sync()
    elapsed = time.perf_counter() - start
    remove(dest)
    return elapsed


def ffprobe_round(ffprobe: str, files: list[Path], args: list[str] | None) -> float:
    """One ffprobe start per file: ``args`` on the file, or ``-version`` alone (None)."""
    start = time.perf_counter()
    for path in files:
        command = [ffprobe, *args, f"file:{path}"] if args is not None else [ffprobe, "-version"]
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def bench(args: argparse.Namespace) -> list[Result]:
    ffmpeg, ffprobe = require("ffmpeg"), require("ffprobe")
    custody = custody_bin()
    print(f"bench_bulk_ingest: custody ingest of {args.count} clips of ~1 MB vs cp -r + sync, {args.runs} rounds")
    cache = Path(args.cache or f"/var/tmp/custody-bench-clips/clips-{args.count}-v1")
    files = make_clips(cache, args.count, ffmpeg)
    clips = cache
    total = sum(f.stat().st_size for f in files)
    print(f"  {len(files)} clips in {clips}, {total / MIB:.1f} MiB, {total / len(files) / MIB:.2f} MiB each", flush=True)
    with workdir(args.dir) as tmp:
        for path in files:
            path.read_bytes()
        one_run = ["-v", "error", "-show_program_version", "-show_format", "-show_streams", "-show_entries",
                   PACKET_ENTRIES, "-show_data_hash", "adler32", "-of", "json"]
        ours, copies, probes, starts, loads = [], [], [], [], []
        tools: list[str] = []
        for index in range(args.runs):
            loads.append(os.getloadavg()[0])
            elapsed, tools = ingest_round(custody, clips, tmp / f"home-{index}")
            ours.append(elapsed)
            copies.append(copy_round(clips, tmp / f"copy-{index}"))
            starts.append(ffprobe_round(ffprobe, files, None))
            if args.full_probe:
                probes.append(ffprobe_round(ffprobe, files, one_run))
            print(f"  round {index + 1}/{args.runs}: ingest {ours[-1]:.2f} s ({len(files) / ours[-1]:.1f} files/s)   "
                  f"cp -r + sync {copies[-1]:.2f} s   {len(files)} x ffprobe -version {starts[-1]:.2f} s"
                  + (f"   ffprobe one run per file {probes[-1]:.2f} s" if probes else "")
                  + f"   (load {loads[-1]:.1f})", flush=True)
    n = len(files)
    rate = n / median(ours)
    print(f"  probed by:                  {', '.join(tools)}")
    print(f"  custody ingest:             {fmt_runs(ours)}  median {median(ours):.2f} s = {rate:.1f} files/s "
          f"= {median(ours) / n * 1000:.1f} ms per file")
    print(f"  cp -r + sync:               {fmt_runs(copies)}  median {median(copies):.2f} s = {n / median(copies):.0f} files/s")
    print(f"  {n} x ffprobe -version:   {fmt_runs(starts)}  median {median(starts):.2f} s = "
          f"{median(starts) / n * 1000:.0f} ms per file (process start alone)")
    if probes:
        print(f"  ffprobe, one run per file:  {fmt_runs(probes)}  median {median(probes):.2f} s = "
              f"{median(probes) / n * 1000:.0f} ms per file")
    print(f"  ingest time / cp -r + sync: {median(ours) / median(copies):.2f}x; "
          f"ingest time / {n} bare ffprobe starts: {median(ours) / median(starts):.2f}x")
    print(f"  load average (1 min) at each round: {', '.join(f'{load:.1f}' for load in loads)} on {os.cpu_count()} cores")
    return [
        Result("bulk-ingest", f"files/s, {n} clips of ~1 MB (local store)", f"{rate:.1f}",
               f">= {TARGET_FILES_PER_S:g}", rate >= TARGET_FILES_PER_S),
        Result("bulk-ingest", "ingest time / cp -r + sync", f"{median(ours) / median(copies):.2f}", "-", True),
        Result("bulk-ingest", f"ingest time / {n} bare ffprobe starts", f"{median(ours) / median(starts):.2f}", "-", True),
    ]


def main() -> None:
    from _common import check_args, finish

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1000, help="number of clips (default 1000)")
    p.add_argument("--cache", default=None, help="where the clips are kept (default /var/tmp/custody-bench-clips/clips-COUNT-v1)")
    p.add_argument("--full-probe", action="store_true", help="also time one full ffprobe run per file")
    p.add_argument("--runs", type=int, default=3, help="timed rounds (default 3; minimum 3)")
    p.add_argument("--dir", default=None, help="parent of the temporary work directory (default: /tmp)")
    args = p.parse_args()
    check_args(args)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    finish(bench(args))


if __name__ == "__main__":
    main()

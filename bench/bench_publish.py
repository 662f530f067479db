"""custody publish stats on a large ledger: 100,000 incidents among 1,000,000 events.

    python bench/bench_publish.py                          # 100,000 incidents, 1,000,000 events
    python bench/bench_publish.py --incidents 2000 --events 20000 --runs 3   # a quick look
    python bench/bench_publish.py --keep /var/tmp/publish-1m   # fill once, reuse in later runs

The ledger (SQLite, the embedded default) is filled through the ledger's own append path
(``Ledger.transaction().append``, 5,000 events a transaction): incidents created, amended
(2 per incident on average) and referred (30%), the rest ingest events as a station would
record them. Each timed round copies the filled data directory and runs ``custody publish
stats --as-of SIZE --period month`` in it as a subprocess: wall time, and peak RSS of that
process (``wait4``). One more round publishes again in the same directory, so that release is
compared with the earlier one (recomputed at its checkpoint): the cost of a revision.

Floor: the ``sqlite3`` shell reading the same rows (the incident events before the checkpoint,
with their details) into nothing, measured in the same run. Targets: under 30 s and 500 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Result, check_args, custody_bin, finish, fmt_runs, median, require, workdir  # noqa: E402

from custody.home import open_workspace  # noqa: E402
from custody.settings import Settings  # noqa: E402

AGENCIES = (["ICE"], ["ICE"], ["CBP"], ["ICE", "CBP"], ["FBI"], [])
CATEGORIES = ("battery", "trust-act", "unlawful-restraint", "use-of-force", "identification-refused",
              "constitutional-rights", "courthouse-civil-arrest")


def _incident_fields(rng: random.Random, number: int) -> dict[str, object]:
    month = rng.randint(1, 24)
    year, month = 2025 + (month - 1) // 12, (month - 1) % 12 + 1
    return {
        "occurred_at": f"{year}-{month:02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:10:00-06:00",
        "location": f"{rng.randint(100, 9999)} W Example St",
        "agencies": list(rng.choice(AGENCIES)),
        "violation_categories": rng.sample(CATEGORIES, rng.choice([0, 1, 1, 2])),
        "use_of_force": "taser deployed" if rng.random() < 0.3 else None,
        "detentions": rng.choice([0, 0, 1, 2]),
        "injuries": "abrasions" if rng.random() < 0.2 else None,
        "ems_summoned": rng.random() < 0.15,
        "aid_rendered": rng.random() < 0.2,
        "supervisor_name": f"Supervisor {number}" if rng.random() < 0.5 else None,
        "credentials": rng.choice(["verified", "refused", "not-attempted"]),
        "report_number": f"RD-{number:07d}",
    }


def _ingest_details(index: int) -> dict[str, object]:
    digest = f"{index:064x}"
    return {"source": {"path": f"/media/dock3/BWC-{index:07d}.mp4", "size": 734003200,
                       "mtime": "2026-11-01T14:00:00Z", "host": "station-3"},
            "blake3": digest, "sha256": digest, "size": 734003200,
            "store": {"key": f"evidence/{digest}", "version": digest[:32]},
            "retention": {"mode": "COMPLIANCE", "until": "2027-02-01T00:00:00Z", "category": "unflagged"}}


def fill(home: Path, incidents: int, events: int, seed: int = 11) -> int:
    """Fill a new data directory; returns the size of the checkpoint signed at the end."""
    env = {**os.environ, "CUSTODY_HOME": str(home)}
    subprocess.run([custody_bin(), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    ws = open_workspace(Settings(home=home, db_url=Settings.default_db_url(home),
                                 store_url=Settings.default_store_url(home), actor="bench"))
    rng = random.Random(seed)
    plan: list[tuple[str, int]] = [("incident-created", n) for n in range(incidents)]
    later = [("incident-amended", rng.randrange(incidents)) for _ in range(incidents * 2)]
    later += [("incident-referred", rng.randrange(incidents)) for _ in range(incidents * 3 // 10)]
    others = max(0, events - len(plan) - len(later))
    later += [("ingested", n) for n in range(others)]
    rng.shuffle(later)
    plan += later
    created: set[int] = set()
    began = time.perf_counter()
    for start in range(0, len(plan), 5000):
        with ws.ledger.transaction() as tx:
            for action, number in plan[start:start + 5000]:
                subject = {"incident": f"BENCH-{number:06d}"}
                if action == "incident-created":
                    created.add(number)
                    details: dict[str, object] = {"fields": {k: v for k, v in _incident_fields(rng, number).items()
                                                             if v not in (None, [])}}
                elif action == "incident-amended":
                    details = {"changes": {"detentions": {"from": None, "to": rng.randint(0, 3)},
                                           "violation_categories": {"from": None, "to": rng.sample(CATEGORIES, 1)}},
                               "reason": "corrected after review"}
                elif action == "incident-referred":
                    details = {"to": "Cook County State's Attorney", "reference": f"SAO-{number:06d}",
                               "felony": rng.random() < 0.4}
                else:
                    subject = {"evidence": f"{number:064x}"}
                    details = _ingest_details(number)
                tx.append(action, actor="bench", subject=subject, details=details)
        if (start // 5000) % 20 == 0:
            print(f"    {start + 5000:,} events ({time.perf_counter() - began:.0f} s)", flush=True)
    sealed = ws.seal(force=True)
    print(f"  filled {len(plan):,} events in {time.perf_counter() - began:.0f} s", flush=True)
    return int(sealed.size)


def run_publish(home: Path, size: int, out: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds (user + system), peak RSS bytes) of one `custody publish
    stats` process. CPU time says what the work costs when other processes share the cores."""
    env = {**os.environ, "CUSTODY_HOME": str(home)}
    began = time.perf_counter()
    process = subprocess.Popen([custody_bin(), "publish", "stats", "--as-of", str(size), "--period", "month",
                                "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"custody publish stats failed: {stderr}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def floor(home: Path, size: int) -> float:
    sqlite3 = require("sqlite3")
    query = ("SELECT seq, time, action, subject_incident, details FROM events WHERE seq < {size} AND action IN "
             "('incident-created','incident-amended','incident-referred') ORDER BY seq;").format(size=size)
    began = time.perf_counter()
    subprocess.run([sqlite3, str(home / "custody.db"), query], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def bench(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with workdir(args.dir) as work:
        base = Path(args.keep) if args.keep else work / "base"
        marker = base / "bench-publish-size"
        wanted = f"{args.incidents} {args.events}"
        if args.keep and marker.exists() and marker.read_text().split()[:2] == wanted.split():
            size = int(marker.read_text().split()[2])
            print(f"  reusing the filled ledger in {base} (checkpoint {size:,})", flush=True)
        else:
            if base.exists():
                shutil.rmtree(base)
            print(f"  filling a ledger: {args.incidents:,} incidents, {args.events:,} events ...", flush=True)
            size = fill(base, args.incidents, args.events)
            marker.write_text(f"{wanted} {size}\n")
        times, cpus, peaks, floors = [], [], [], []
        for run in range(args.runs):
            home = work / f"run-{run}"
            shutil.copytree(base, home, symlinks=True, ignore=shutil.ignore_patterns("bench-publish-size"))
            seconds, cpu, peak = run_publish(home, size, work / f"release-{run}")
            floors.append(floor(home, size))
            times.append(seconds)
            cpus.append(cpu)
            peaks.append(peak)
            print(f"  round {run + 1}: publish stats {seconds:.2f} s (CPU {cpu:.2f} s), peak RSS {peak / 2**20:.0f} MiB; "
                  f"sqlite3 reading the same rows {floors[-1]:.2f} s", flush=True)
            if run:
                shutil.rmtree(home, ignore_errors=True)
        revision, revision_cpu, revision_peak = run_publish(work / "run-0", size, work / "release-again")
        print(f"  again in the same ledger (compared with the first release): {revision:.2f} s (CPU {revision_cpu:.2f} s), "
              f"peak RSS {revision_peak / 2**20:.0f} MiB", flush=True)
        label = f"{args.incidents:,} incidents, {args.events:,} events"
        results.append(Result("publish", f"publish stats, {label}: {fmt_runs(times, 's', 2)}",
                              f"{median(times):.2f} s (floor {median(floors):.2f} s, x{median(times) / median(floors):.1f})",
                              "< 30 s", median(times) < 30.0))
        results.append(Result("publish", f"publish stats, CPU (user + system): {fmt_runs(cpus, 's', 2)}",
                              f"{median(cpus):.2f} s", "report", True))
        results.append(Result("publish", "publish stats, peak RSS", f"{median(peaks) / 2**20:.0f} MiB", "< 500 MB",
                              median(peaks) < 500e6))
        results.append(Result("publish", "publish stats with a revision against the earlier release",
                              f"{revision:.2f} s (CPU {revision_cpu:.2f} s), {revision_peak / 2**20:.0f} MiB", "report", True))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--incidents", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default=None)
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="fill the ledger into DIR and keep it; a later run with the same sizes reuses it (untimed)")
    args = p.parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

"""Ledger appends per second with 1 and with 8 concurrent writer processes, on PostgreSQL and on
SQLite, in one run.

    python bench/bench_db.py                        # 2,000 appends per round, 3 rounds
    python bench/bench_db.py --appends 5000 --runs 5

Each append is one write transaction through ``Ledger.transaction``, as one ingested file is:
the lock (``BEGIN IMMEDIATE`` on SQLite, the advisory transaction lock on PostgreSQL), the head,
the event with ingest-sized details, its Merkle tree nodes, the commit. The writers are separate
processes that start together (a barrier); the rate is all their appends divided by the wall
time from the start to the last commit. After every round the ledger must verify (hash chain,
event numbers 0..N-1), so a fast but forked chain cannot pass.

PostgreSQL is a throwaway cluster from ``infra/dev/start-postgres.sh`` on this machine (fsync
on, its defaults otherwise, over 127.0.0.1), a fresh database per round; SQLite is the default
configuration (WAL, synchronous=FULL) in a temporary directory. No targets: the numbers are
reported.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Result, check_args, finish, median, remove  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WRITER_COUNTS = (1, 8)


def _details(writer: int, index: int) -> dict[str, Any]:
    digest = f"{writer:08x}{index:056x}"
    return {
        "source": {"path": f"/media/dock{writer}/BWC-{index:07d}.mp4", "name": f"BWC-{index:07d}.mp4",
                   "size": 734003200, "mtime": "2026-11-01T14:00:00Z", "host": f"station-{writer}"},
        "blake3": digest, "sha256": digest, "size": 734003200,
        "store": {"location": "s3://evidence", "key": f"evidence/{digest}", "version": digest[:32]},
        "retention": {"mode": "COMPLIANCE", "until": "2027-02-01T00:00:00Z", "category": "unflagged"},
        "legal_hold": False,
    }


def _writer(url: str, writer: int, count: int, ready: Any, go: Any) -> None:
    """One writer process: connect, wait for the start, append ``count`` events one per transaction."""
    from custody.ledger.database import Ledger

    ledger = Ledger(url, busy_timeout=300)
    ledger.head()
    ready.wait()
    go.wait()
    for index in range(count):
        with ledger.transaction() as tx:
            tx.append("ingested", actor=f"station-{writer}", subject={"evidence": f"{writer:08x}{index:056x}"},
                      details=_details(writer, index))
    ledger.engine.dispose()


def _round(url: str, writers: int, appends: int) -> float:
    """Appends per second of ``writers`` processes sharing ``appends`` events, on a fresh ledger."""
    from custody.ledger.database import Ledger

    ledger = Ledger(url)
    ledger.create()
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(writers + 1)
    go = context.Event()
    each = [appends // writers + (1 if n < appends % writers else 0) for n in range(writers)]
    processes = [context.Process(target=_writer, args=(url, n, each[n], ready, go)) for n in range(writers)]
    for process in processes:
        process.start()
    ready.wait(timeout=120)
    began = time.perf_counter()
    go.set()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - began
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} writer(s) failed (exit codes {failed})")
    count, findings = ledger.verify_chain()
    if count != appends or findings:
        raise RuntimeError(f"the ledger does not verify after the round: {count} events, {findings[:3]}")
    ledger.engine.dispose()
    return appends / elapsed


class ThrowawayPostgres:
    """A PostgreSQL cluster from infra/dev/start-postgres.sh, stopped and removed on exit."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="custody-bench-pg-"))
        done = subprocess.run([str(REPO / "infra" / "dev" / "start-postgres.sh"), str(self.directory)],
                              capture_output=True, text=True, env={**os.environ, "PG_FSYNC": "on"})
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"start-postgres.sh failed: {done.stderr.strip()[-800:]}")
        exported = dict(shlex.split(line)[1].split("=", 1) for line in done.stdout.splitlines() if line.startswith("export "))
        self.port = int(exported["PGPORT"])

    def new_database(self) -> str:
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run([str(REPO / "infra" / "dev" / "stop-postgres.sh"), str(self.directory), "--purge"],
                       capture_output=True)
        remove(self.directory)


def bench(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    server = ThrowawayPostgres()
    sqlite_dir = Path(tempfile.mkdtemp(prefix="custody-bench-db-", dir=args.dir or "/tmp"))
    try:
        rates: dict[tuple[str, int], list[float]] = {}
        for run in range(args.runs):
            for writers in WRITER_COUNTS:
                for backend in ("postgresql", "sqlite"):
                    if backend == "sqlite":
                        url = f"sqlite:///{sqlite_dir / f'ledger-{run}-{writers}.db'}"
                    else:
                        url = server.new_database()
                    rate = _round(url, writers, args.appends)
                    rates.setdefault((backend, writers), []).append(rate)
                    print(f"  round {run + 1}/{args.runs}: {backend:<10} {writers} writer(s): {rate:7.0f} appends/s",
                          flush=True)
        for backend in ("postgresql", "sqlite"):
            for writers in WRITER_COUNTS:
                results.append(Result("db", f"{backend}, {writers} writer process(es), 1 event/transaction",
                                      f"{median(rates[(backend, writers)]):.0f} appends/s", "report", True))
        for backend in ("postgresql", "sqlite"):
            ratio = median(rates[(backend, 8)]) / median(rates[(backend, 1)])
            results.append(Result("db", f"{backend}: 8 writers / 1 writer", f"{ratio:.2f}x", "report", True))
    finally:
        server.stop()
        remove(sqlite_dir)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--appends", type=int, default=2000, help="events appended per round, shared by the writers")
    p.add_argument("--runs", type=int, default=3, help="rounds (default 3; minimum 3)")
    p.add_argument("--dir", default=None, help="parent of the SQLite work directory (default: /tmp)")
    args = p.parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

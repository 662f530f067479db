"""The custody ledger at scale: appends per second (with and without a checkpoint every 1,000
events), `custody ledger verify` on 1,000,000 events, and inclusion proofs at 1,000,000 events.

    python bench/bench_ledger.py                       # 100,000 appends, verify/prove at 1,000,000
    python bench/bench_ledger.py --events 1000000 --appends 100000 --runs 3

Targets: verify of 1,000,000 events at most 15 s; an inclusion proof under 10 ms. Appends per
second are reported (no target). The ledger is the SQLite default, filled through the same
append path the commands use.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Result, check_args, custody_bin, finish, median, workdir  # noqa: E402

from custody.home import open_workspace  # noqa: E402
from custody.ledger.seal import prove_event  # noqa: E402
from custody.settings import Settings  # noqa: E402
from custody.ledger.tree import inclusion_proof, root, verify_inclusion  # noqa: E402


def _details(index: int) -> dict[str, object]:
    digest = f"{index:064x}"
    return {
        "source": {"path": f"/media/dock3/BWC-{index:07d}.mp4", "name": f"BWC-{index:07d}.mp4", "size": 734003200,
                   "mtime": "2026-11-01T14:00:00Z", "host": "station-3"},
        "blake3": digest, "sha256": digest, "size": 734003200,
        "store": {"location": "file:///bench", "key": f"evidence/{digest}", "version": digest[:32]},
        "retention": {"mode": "COMPLIANCE", "until": "2027-02-01T00:00:00Z", "category": "default"},
        "legal_hold": False,
    }


def _workspace(home: Path):  # type: ignore[no-untyped-def]
    env = {**os.environ, "CUSTODY_HOME": str(home)}
    subprocess.run([custody_bin(), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    settings = Settings(home=home, db_url=Settings.default_db_url(home), store_url=Settings.default_store_url(home),
                        actor="bench")
    return open_workspace(settings), env


def _append(ws, count: int, start: int, checkpoint_every: int | None, per_transaction: int = 1000) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    done = 0
    while done < count:
        n = min(per_transaction, count - done)
        with ws.ledger.transaction() as tx:
            for i in range(start + done, start + done + n):
                tx.append("ingested", actor="tech-0412", subject={"evidence": f"{i:064x}"}, details=_details(i))
        done += n
        if checkpoint_every and done % checkpoint_every == 0:
            ws.seal()
    return time.perf_counter() - began


def bench(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with workdir(args.dir) as work:
        rates, rates_cp = [], []
        for run in range(args.runs):
            ws, _ = _workspace(work / f"append-{run}")
            seconds = _append(ws, args.appends, 0, None)
            rates.append(args.appends / seconds)
            ws2, _ = _workspace(work / f"append-cp-{run}")
            seconds_cp = _append(ws2, args.appends, 0, 1000)
            rates_cp.append(args.appends / seconds_cp)
            print(f"  round {run + 1}: {rates[-1]:.0f} events/s; with a checkpoint per 1,000: {rates_cp[-1]:.0f} events/s", flush=True)
        results.append(Result("ledger", f"append {args.appends:,} events", f"{median(rates):.0f} events/s", "report", True))
        results.append(Result("ledger", "append, checkpoint per 1,000", f"{median(rates_cp):.0f} events/s", "report", True))

        print(f"  filling a ledger with {args.events:,} events ...", flush=True)
        ws, env = _workspace(work / "big")
        fill = _append(ws, args.events, 0, None, per_transaction=5000)
        print(f"  filled in {fill:.0f} s ({args.events / fill:.0f} events/s)", flush=True)
        ws.seal()
        verify_times = []
        for run in range(args.runs):
            began = time.perf_counter()
            done = subprocess.run([custody_bin(), "ledger", "verify"], env=env, capture_output=True, text=True)
            verify_times.append(time.perf_counter() - began)
            if done.returncode != 0:
                raise RuntimeError(f"ledger verify failed: {done.stderr}")
            print(f"  round {run + 1}: custody ledger verify {verify_times[-1]:.2f} s: {done.stdout.strip()}", flush=True)
        results.append(Result("ledger", f"custody ledger verify, {args.events:,} events", f"{median(verify_times):.2f} s",
                              "<= 15 s", median(verify_times) <= 15.0))

        size = args.events
        tree_root = ws.ledger.with_nodes(lambda nodes: root(nodes, size))
        rng = random.Random(7)
        proof_times = []
        for _ in range(200):
            index = rng.randrange(size)
            began = time.perf_counter()
            proof = ws.ledger.with_nodes(lambda nodes: inclusion_proof(nodes, index, size))
            proof_times.append(time.perf_counter() - began)
            leaf = next(ws.ledger.leaf_hashes_from(index))
            assert verify_inclusion(bytes.fromhex(leaf), index, size, proof, tree_root)
        results.append(Result("ledger", f"inclusion proof at {size:,} events (median of 200)",
                              f"{median(proof_times) * 1000:.2f} ms", "< 10 ms", median(proof_times) < 0.010))
        signer = ws.signer()
        tlog_times = []
        for _ in range(20):
            index = rng.randrange(size)
            began = time.perf_counter()
            prove_event(ws.ledger, ws.store, signer, index)
            tlog_times.append(time.perf_counter() - began)
        results.append(Result("ledger", "signed tlog-proof (prove_event), median of 20",
                              f"{median(tlog_times) * 1000:.2f} ms", "< 10 ms", median(tlog_times) < 0.010))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="ledger size for verify and proofs")
    p.add_argument("--appends", type=int, default=100_000, help="events appended per append round")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

"""Outside anchors: the cost of a seal with 2 witnesses and a TSA on loopback, witness
throughput, and publishing tlog-tiles for a large log and for a few new events on top.

    python bench/bench_anchors.py                          # 1,000,000 events, 1,000 more
    python bench/bench_anchors.py --events 100000 --more 1000 --seals 20 --runs 3
    python bench/bench_anchors.py --only tiles --s3 's3://BUCKET/bench?endpoint_url=http://127.0.0.1:7480'

Reported (medians of --runs rounds):
* ms per seal with 2 `custody witness serve` processes and infra/dev/tsa-server.py (openssl ts)
  on loopback, against the same seal with no anchors (the floor);
* cosignatures per second from one witness: consecutive add-checkpoint requests, each with a
  consistency proof, over one keep-alive connection;
* seconds to publish the tiles of --events events into an empty directory, and then of --more
  events on top (target: the second is proportional to the new events: under 2% of the first),
  against the floor of reading the level-0 hashes with the stock sqlite3 command;
* with --s3 s3://BUCKET/PREFIX?endpoint_url=...: the same two publications to a fresh prefix
  under it for each round (credentials from the environment, as for the evidence store), e.g.
  on the Ceph RGW that infra/dev/start-ceph-rgw.sh starts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Result, check_args, custody_bin, finish, fmt_runs, median, workdir  # noqa: E402

from custody.home import open_workspace  # noqa: E402
from custody.ledger import checkpoint as notes  # noqa: E402
from custody.ledger import tree  # noqa: E402
from custody.settings import Settings  # noqa: E402
from tests.integration.witnesses import TsaProcess, WitnessProcess, anchors_config  # noqa: E402


def _home(base: Path, name: str) -> tuple[Path, Settings]:
    home = base / name
    env = {**os.environ, "CUSTODY_HOME": str(home)}
    subprocess.run([custody_bin(), "init"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return home, Settings(home=home, db_url=Settings.default_db_url(home), store_url=Settings.default_store_url(home), actor="bench")


def _seal_ms(settings: Settings, seals: int) -> float:
    import tomllib

    config = tomllib.loads((settings.home / "config.toml").read_text()) if (settings.home / "config.toml").exists() else {}
    settings = Settings(settings.home, settings.db_url, settings.store_url, settings.actor, config=config)
    ws = open_workspace(settings)
    spent = 0.0
    for n in range(seals):
        ws.ledger.append("note-added", actor="bench", details={"note": f"bench {n}"})
        began = time.perf_counter()
        ws.seal()
        spent += time.perf_counter() - began
    return spent / seals * 1000


def bench_seal(base: Path, seals: int, runs: int) -> list[Result]:
    anchored_home, anchored = _home(base, "anchored")
    plain_home, plain = _home(base, "plain")
    log_vkey = (anchored_home / "verifier.key").read_text().strip()
    witnesses = [WitnessProcess(base / f"w{n}", f"bench.example/w{n}").init(log_vkey).start() for n in (1, 2)]
    tsa = TsaProcess(base / "tsa").start()
    try:
        (anchored_home / "config.toml").write_text(anchors_config(witnesses, 2, extra=tsa.config()))
        ours, floor = [], []
        for _ in range(runs):
            ours.append(_seal_ms(anchored, seals))
            floor.append(_seal_ms(plain, seals))
    finally:
        for witness in witnesses:
            witness.stop()
        tsa.stop()
    with sqlite3.connect(anchored_home / "custody.db") as db:
        kinds = dict(db.execute("SELECT kind, count(*) FROM checkpoint_anchors GROUP BY kind").fetchall())
    assert kinds.get("cosignature") == 2 * seals * runs and kinds.get("rfc3161") == seals * runs, kinds
    print(f"  seal, 2 witnesses + TSA: {fmt_runs(ours, 'ms', 1)}; no anchors: {fmt_runs(floor, 'ms', 1)}")
    return [
        Result("anchors", "ms per seal (2 witnesses + TSA)", f"{median(ours):.1f} ms (floor {median(floor):.1f} ms)", "report", True),
    ]


def bench_witness(base: Path, count: int, runs: int) -> list[Result]:
    signer_text, vkey = notes.generate_signer("bench.example/log")
    signer = notes.Signer.from_text(signer_text)
    nodes = tree.MemoryNodeStore()
    requests = []
    for size in range(count + 1):
        nodes.add_nodes(tree.append_leaf(nodes, size, hashlib.sha256(size.to_bytes(8, "big")).digest()))
        if size == 0:
            continue
        note = notes.sign_checkpoint(notes.Checkpoint(signer.name, size, tree.root(nodes, size)), [signer])
        proof = tree.consistency_proof(nodes, size - 1, size) if size > 1 else []
        body = "\n".join([f"old {size - 1}"] + [base64.b64encode(h).decode() for h in proof]) + "\n\n" + note
        requests.append(body.encode())
    rates = []
    for run in range(runs):
        witness = WitnessProcess(base / f"tw{run}", "bench.example/throughput").init(vkey).start()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", witness.port, timeout=10)
            began = time.perf_counter()
            for body in requests:
                connection.request("POST", "/add-checkpoint", body)
                answer = connection.getresponse()
                answer.read()
                assert answer.status == 200, answer.status
            rates.append(len(requests) / (time.perf_counter() - began))
            connection.close()
        finally:
            witness.stop()
    print(f"  witness: {fmt_runs(rates, 'cosignatures/s', 0)}")
    return [Result("anchors", "witness cosignatures/s (1 connection)", f"{median(rates):.0f}", "report", True)]


def _fill(home: Path, events: int, start: int = 0) -> None:
    """Tree nodes for leaves [start, events) written straight into tree_nodes (what appends
    store), computed with custody's own tree code."""
    db = sqlite3.connect(home / "custody.db")
    nodes = tree.MemoryNodeStore()
    if start:
        for level, idx, digest in db.execute("SELECT level, idx, hash FROM tree_nodes"):
            nodes.add_nodes([(level, idx, bytes.fromhex(digest))])
    rows = []
    for index in range(start, events):
        created = tree.append_leaf(nodes, index, hashlib.sha256(index.to_bytes(8, "big")).digest())
        nodes.add_nodes(created)
        rows.extend((level, idx, digest.hex()) for level, idx, digest in created)
    db.executemany("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()


def _s3_round(ledger: Any, url: str, events: int, more: int, notes_: tuple[str, str]) -> tuple[float, float]:
    """Seconds to publish ``events`` to a fresh prefix under ``url``, then ``more`` on top."""
    from urllib.parse import urlsplit

    from custody.anchors.public_s3 import open_s3_log
    from custody.anchors.tiles import publish

    parts = urlsplit(url)
    fresh = parts._replace(path=f"{parts.path.rstrip('/')}/bench-{uuid.uuid4().hex[:8]}").geturl()
    log = open_s3_log(fresh)
    began = time.perf_counter()
    publish(ledger, log, events, notes_[0], [])
    full = time.perf_counter() - began
    log = open_s3_log(fresh)
    began = time.perf_counter()
    result = publish(ledger, log, events + more, notes_[1], [])
    assert result.previous_size == events
    return full, time.perf_counter() - began


def bench_tiles(base: Path, events: int, more: int, runs: int, s3: str | None = None) -> list[Result]:
    from custody.anchors.tiles import publish
    from custody.ledger.database import Ledger

    home, settings = _home(base, "tiles")
    print(f"  filling {events:,} tree leaves ...", flush=True)
    _fill(home, events)
    ledger = Ledger(settings.db_url)
    signer = notes.Signer.from_text((home / "signing.key").read_text().strip())

    def note(size: int) -> str:
        return notes.sign_checkpoint(notes.Checkpoint(signer.name, size, ledger.with_nodes(lambda n: tree.root(n, size))), [signer])

    first_note = note(events)
    full, incremental = [], []
    grown = False
    for run in range(runs):
        target = base / f"public-{run}"
        began = time.perf_counter()
        publish(ledger, target, events, first_note, [])
        full.append(time.perf_counter() - began)
        if not grown:
            _fill(home, events + more, start=events)
            grown = True
        second_note = note(events + more)
        began = time.perf_counter()
        result = publish(ledger, target, events + more, second_note, [])
        incremental.append(time.perf_counter() - began)
        assert result.previous_size == events
        shutil.rmtree(target)
    floor = []
    sqlite = shutil.which("sqlite3")
    if sqlite:
        for _ in range(runs):
            began = time.perf_counter()
            subprocess.run([sqlite, str(home / "custody.db"), "SELECT hash FROM tree_nodes WHERE level = 0"],
                           check=True, stdout=subprocess.DEVNULL)
            floor.append(time.perf_counter() - began)
    floor_text = f" (floor: sqlite3 reads the leaf hashes in {median(floor):.2f} s)" if floor else ""
    print(f"  publish {events:,}: {fmt_runs(full)}; {more:,} more: {fmt_runs(incremental)}{floor_text}")
    ratio = median(incremental) / median(full)
    results = [
        Result("anchors", f"publish tiles, {events:,} events", f"{median(full):.2f} s{floor_text}", "report", True),
        Result("anchors", f"publish tiles, {more:,} more", f"{median(incremental) * 1000:.1f} ms ({ratio:.2%} of full)", "< 2% of full", ratio < 0.02),
    ]
    if s3:
        rounds = [_s3_round(ledger, s3, events, more, (first_note, second_note)) for _ in range(runs)]
        on_s3, on_s3_more = [r[0] for r in rounds], [r[1] for r in rounds]
        print(f"  publish to S3 {events:,}: {fmt_runs(on_s3)}; {more:,} more: {fmt_runs(on_s3_more)}")
        s3_ratio = median(on_s3_more) / median(on_s3)
        results += [
            Result("anchors", f"publish tiles to S3, {events:,} events", f"{median(on_s3):.2f} s", "report", True),
            Result("anchors", f"publish tiles to S3, {more:,} more", f"{median(on_s3_more) * 1000:.1f} ms "
                   f"({s3_ratio:.2%} of full)", "< 2% of full", s3_ratio < 0.02),
        ]
    return results


def bench(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with workdir(args.dir) as base:
        if args.only in (None, "seal"):
            results += bench_seal(base, args.seals, args.runs)
        if args.only in (None, "witness"):
            results += bench_witness(base, args.cosignatures, args.runs)
        if args.only in (None, "tiles"):
            results += bench_tiles(base, args.events, args.more, args.runs, args.s3)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--more", type=int, default=1_000)
    p.add_argument("--seals", type=int, default=20, help="seals per round (default 20)")
    p.add_argument("--cosignatures", type=int, default=500, help="add-checkpoint requests per round (default 500)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default=None)
    p.add_argument("--only", choices=["seal", "witness", "tiles"], default=None, help="run one of the three parts")
    p.add_argument("--s3", default=None, metavar="URL",
                   help="also publish the tiles to S3: s3://BUCKET/PREFIX?endpoint_url=... (credentials from the environment)")
    args = p.parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()

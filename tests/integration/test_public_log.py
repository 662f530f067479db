"""``custody ledger publish``: the ledger's hashes as C2SP tlog-tiles, checked by Go's
golang.org/x/mod/sumdb/tlog and sumdb/note (Debian's golang-golang-x-mod-dev, built offline in
GOPATH mode), which share no code with custody: an inclusion proof and a consistency proof
computed from the published tiles, and the witnesses' cosignatures on the published checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from custody.ledger.database import Ledger
from tests.conftest import IN_CI, Custody, require_tool
from tests.integration.witnesses import WitnessProcess, anchors_config

GO_SOURCE = Path(__file__).with_name("go") / "tlogcheck.go"
GOPATH = Path("/usr/share/gocode")


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = require_tool("go")
    if not (GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb" / "tlog").is_dir():
        message = "golang-golang-x-mod-dev is not installed (make test installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp("tlogcheck")
    shutil.copy(GO_SOURCE, work / "tlogcheck.go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOCACHE": str(work / "cache"), "GOFLAGS": ""}
    subprocess.run([go, "build", "-o", str(work / "tlogcheck"), "tlogcheck.go"], cwd=work, env=env, check=True)
    return work / "tlogcheck"


def _append(custody: Custody, count: int) -> None:
    ledger = Ledger(f"sqlite:///{custody.home / 'custody.db'}")
    with ledger.transaction() as tx:
        for n in range(count):
            tx.append("note-added", actor="tech-0412", details={"note": f"shift note {n}"})


def _leaf(custody: Custody, seq: int, target: Path) -> Path:
    ledger = Ledger(f"sqlite:///{custody.home / 'custody.db'}")
    event = next(ledger.events(start=seq, batch=1))
    assert event.seq == seq
    target.write_bytes(event.canonical())
    return target


@pytest.fixture
def witness(initialized: Custody, tmp_path: Path) -> Iterator[WitnessProcess]:
    process = WitnessProcess(tmp_path / "w1", "witness.example/w1").init(initialized("ledger", "key").stdout.strip()).start()
    (initialized.home / "config.toml").write_text(anchors_config([process], 1))
    yield process
    process.stop()


def _check(tlogcheck: Path, public: Path, vkey: str, old: Path, index: int, leaf: Path, *witnesses: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tlogcheck), str(public), vkey, str(old), str(index), str(leaf), *witnesses],
        capture_output=True, text=True, timeout=60,
    )


def test_published_tiles_prove_inclusion_and_consistency_to_go_tlog(
    initialized: Custody, witness: WitnessProcess, tlogcheck: Path, tmp_path: Path
) -> None:
    vkey = initialized("ledger", "key").stdout.strip()
    public = tmp_path / "public"
    _append(initialized, 300)
    first = initialized.json("ledger", "publish", str(public))
    assert (first["size"], first["previous_size"], first["cosignatures"]) == (300, 0, 1)
    assert sorted(str(p.relative_to(public)) for p in (public / "tile").rglob("*") if p.is_file()) == [
        "tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1",
    ]
    assert (public / "tile" / "0" / "000").stat().st_size == 256 * 32
    old = tmp_path / "checkpoint-300"
    shutil.copy(public / "checkpoint", old)

    _append(initialized, 700)
    second = initialized.json("ledger", "publish", str(public))
    assert (second["size"], second["previous_size"]) == (1000, 300)
    assert second["tiles_written"] == 4, "0/001 and 0/002 became full; new partials 0/003.p/232 and 1/000.p/3"
    assert (public / "tile" / "0" / "000").stat().st_size == 8192
    assert (public / "tile" / "0" / "003.p" / "232").stat().st_size == 232 * 32
    published = (public / "checkpoint").read_text()
    assert published.split("\n")[1] == "1000" and published.count("\u2014 ") == 2

    for index in (0, 299, 777, 999):
        result = _check(tlogcheck, public, vkey, old, index, _leaf(initialized, index, tmp_path / f"leaf-{index}"), witness.vkey)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"inclusion OK: leaf {index} in tree 1000",
            "consistency OK: tree 1000 extends tree 300",
            "cosignature OK: witness.example/w1",
        ]
    wrong = _leaf(initialized, 5, tmp_path / "leaf-5")
    refused = _check(tlogcheck, public, vkey, old, 6, wrong)
    assert refused.returncode == 1 and "FAIL: inclusion" in refused.stderr
    tile = public / "tile" / "0" / "002"
    data = bytearray(tile.read_bytes())
    data[100] ^= 1
    tile.chmod(0o644)
    tile.write_bytes(bytes(data))
    tampered = _check(tlogcheck, public, vkey, old, 600, _leaf(initialized, 600, tmp_path / "leaf-600"))
    assert tampered.returncode == 1 and tampered.stderr.startswith("FAIL: inclusion"), tampered.stderr
    assert b"shift note" not in b"".join(p.read_bytes() for p in public.rglob("*") if p.is_file()), "hashes only"


def test_publishing_refuses_a_ledger_that_no_longer_extends_the_publication(initialized: Custody, tmp_path: Path) -> None:
    public = tmp_path / "public"
    _append(initialized, 10)
    initialized.json("ledger", "publish", str(public))
    checkpoint = (public / "checkpoint").read_text()
    lines = checkpoint.split("\n")
    lines[1] = "11"
    (public / "checkpoint").write_text("\n".join(lines))
    result = initialized("ledger", "publish", str(public))
    assert result.exit_code == 3
    assert "the published log has 11 entries but this ledger's checkpoint has 10" in result.stderr
    (public / "checkpoint").write_text(checkpoint.replace(checkpoint.split("\n")[2], "A" * 43 + "="))
    _append(initialized, 1)
    result = initialized("ledger", "publish", str(public))
    assert result.exit_code == 3 and "has another root than this ledger at that size" in result.stderr
    assert json.loads(initialized("ledger", "verify", "--json").stdout)["ok"] is True
    s3 = initialized("ledger", "publish", "s3://bucket")
    assert s3.exit_code == 2 and "give a prefix (s3://BUCKET/PREFIX)" in s3.output

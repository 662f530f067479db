"""A public release carries the witnesses' cosignatures on the checkpoint its published event is
proved in, and 'publish verify --trust-witness ... --witness-quorum N' requires them. Two real
witnesses ('custody witness serve') on loopback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Custody
from tests.integration.witnesses import WitnessProcess, anchors_config


@pytest.fixture(scope="module")
def witnessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("witnessed-release")
    home = base / "home"
    custody = Custody(home, {"CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "analyst-17", "CUSTODY_DB": "", "CUSTODY_STORE": ""})
    assert custody("init").exit_code == 0
    key = custody("ledger", "key").stdout.strip()
    witnesses = [WitnessProcess(base / f"w{n}", f"witness.example/w{n}").init(key).start() for n in (1, 2)]
    stranger = WitnessProcess(base / "w3", "witness.example/w3").init(key)
    try:
        (home / "config.toml").write_text(anchors_config(witnesses, 2))
        for number, agency in enumerate(["ICE", "CBP", "ICE"]):
            made = custody("incident", "create", f"INC-{number}", "--occurred-at", "2026-05-02T10:00:00-05:00",
                           "--agency", agency)
            assert made.exit_code == 0 and "warning" not in made.stderr, made.output
        out = base / "release"
        made = custody("publish", "stats", "--as-of", "latest", "--out", str(out), "--json")
        assert made.exit_code == 0 and "warning" not in made.stderr, made.output
        yield {"custody": custody, "release": out, "key": key, "witnesses": [w.vkey for w in witnesses],
               "stranger": stranger.vkey}
    finally:
        for witness in witnesses:
            witness.stop()


def _verify(custody: Custody, release: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = custody("publish", "verify", str(release), "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def _trusting(witnessed: dict[str, Any], *vkeys: str) -> list[str]:
    args = ["--key", witnessed["key"]]
    for vkey in vkeys:
        args += ["--trust-witness", vkey]
    return args


def test_the_release_carries_both_cosignatures_and_verify_requires_the_quorum(witnessed: dict[str, Any]) -> None:
    release, custody = witnessed["release"], witnessed["custody"]
    lines = (release / "cosignatures.txt").read_text().splitlines()
    assert len(lines) == 2 and {line.split(" ")[1] for line in lines} == {"witness.example/w1", "witness.example/w2"}
    event = json.loads((release / "published-event.json").read_text())
    assert "cosignatures.txt" not in event["details"]["files"], "written after the event, like its proof"
    code, report = _verify(custody, release, *_trusting(witnessed, *witnessed["witnesses"]))
    assert code == 0, report["findings"]
    assert sorted(report["cosigned_by"]) == sorted("+".join(v.split("+")[:2]) for v in witnessed["witnesses"])
    plain = custody("publish", "verify", str(release), *_trusting(witnessed, *witnessed["witnesses"]))
    assert plain.exit_code == 0 and "cosigned by witness.example/w1+" in plain.stdout


def test_a_witness_that_did_not_cosign_does_not_count(witnessed: dict[str, Any]) -> None:
    code, report = _verify(witnessed["custody"], witnessed["release"],
                           *_trusting(witnessed, witnessed["witnesses"][0], witnessed["stranger"]))
    assert code == 3
    [finding] = report["findings"]
    assert (finding["kind"], finding["subject"]) == ("under-quorum", "cosignatures.txt")
    assert finding["message"].startswith("1 of the trusted witnesses cosigned")
    code, report = _verify(witnessed["custody"], witnessed["release"],
                           *_trusting(witnessed, witnessed["witnesses"][0], witnessed["stranger"]), "--witness-quorum", "1")
    assert code == 0, report["findings"]


def test_a_removed_or_forged_cosignature_is_a_finding(witnessed: dict[str, Any], tmp_path: Path) -> None:
    custody, trust = witnessed["custody"], _trusting(witnessed, *witnessed["witnesses"])
    copy = tmp_path / "release"
    shutil.copytree(witnessed["release"], copy)
    path = copy / "cosignatures.txt"
    first, second = path.read_text().splitlines()
    path.write_text(first + "\n")
    code, report = _verify(custody, copy, *trust)
    assert code == 3 and [f["kind"] for f in report["findings"]] == ["under-quorum"]
    name, _, signature = second.rpartition(" ")
    forged = bytearray(signature.encode())
    forged[-6] = ord("A") if forged[-6] != ord("A") else ord("B")
    path.write_text(first + "\n" + name + " " + forged.decode() + "\n")
    code, report = _verify(custody, copy, *trust)
    assert code == 3 and "under-quorum" in {f["kind"] for f in report["findings"]}
    path.unlink()
    code, report = _verify(custody, copy, *trust)
    assert code == 3 and "carries no cosignatures" in report["findings"][0]["message"]
    code, report = _verify(custody, copy, "--key", witnessed["key"])
    assert code == 0, "without trusted witnesses nothing is required"
    bad = custody("publish", "verify", str(copy), "--trust-witness", witnessed["witnesses"][0], "--witness-quorum", "2")
    assert bad.exit_code == 2 and "--witness-quorum" in bad.stderr

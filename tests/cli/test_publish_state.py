"""custody publish: each release keeps what it hands on (its state) privately in the data
directory, bound to its ``published`` event, so the next release reads it instead of making
every earlier release again from the ledger. Releases made with the state files equal those made
without them, byte for byte; a changed state file is not used; the state never leaves the data
directory; and the fifth release replays the ledger once, as the first does."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_publish import SyntheticYear, make_year
from tests.conftest import Custody

RELEASE_FILES = {"data.json", "datapackage.json", "index.html", "checkpoint.txt", "README.txt"}


@pytest.fixture(scope="module")
def small_year(tmp_path_factory: pytest.TempPathFactory) -> SyntheticYear:
    home = tmp_path_factory.mktemp("publish-state") / "home"
    custody = Custody(home, {"CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "analyst-17", "CUSTODY_DB": "",
                             "CUSTODY_STORE": ""})
    return make_year(custody, incidents=120, later=20)


def _copy(home: Path, to: Path, custody: Custody) -> Custody:
    shutil.copytree(home, to, symlinks=True)
    return Custody(to, {**custody.env, "CUSTODY_HOME": str(to)})


def _publish(custody: Custody, out: Path, as_of: str, period: str = "month") -> dict[str, Any]:
    result = custody("publish", "stats", "--as-of", as_of, "--period", period, "--out", str(out))
    assert result.exit_code == 0, result.output
    event: dict[str, Any] = json.loads((out / "published-event.json").read_text())
    return event


def _states(custody: Custody) -> list[Path]:
    return sorted((custody.home / "publish" / "state").glob("*.json"))


def _compared(out: Path) -> dict[str, bytes]:
    """The files a release's computation makes (not its event, proofs or checkpoint notes)."""
    return {p.name: p.read_bytes() for p in out.iterdir() if p.name.endswith(".csv") or p.name in RELEASE_FILES}


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many times the ledger is replayed into incidents (``incidents_at``) since the last call."""
    import custody.publish.release as release

    count = [0]
    real = release.incidents_at

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(release, "incidents_at", counted)

    def taken() -> int:
        found, count[0] = count[0], 0
        return found

    return taken


def _four_releases(custody: Custody, year: SyntheticYear, releases: Path) -> None:
    """Four releases: month, quarter, month and month, at the first checkpoint and the latest."""
    for number, (as_of, period) in enumerate([(str(year.checkpoint), "month"), (str(year.checkpoint), "quarter"),
                                              ("latest", "month"), ("latest", "month")]):
        _publish(custody, releases / f"r{number + 1}", as_of, period)


def test_releases_with_state_equal_releases_without_and_the_fifth_replays_once(
        small_year: SyntheticYear, tmp_path: Path, replays: Callable[[], int]) -> None:
    kept = _copy(small_year.custody.home, tmp_path / "kept", small_year.custody)
    _four_releases(kept, small_year, tmp_path / "kept-releases")
    states = _states(kept)
    assert len(states) == 4
    for path in states:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    cleared = _copy(kept.home, tmp_path / "cleared", kept)
    shutil.rmtree(cleared.home / "publish" / "state")
    as_of = str(_latest_checkpoint(kept))
    replays()
    with_state = _publish(kept, tmp_path / "fifth-kept", as_of)
    assert replays() == 1, "the fifth release replays the ledger once: the earlier releases are read from their state"
    without = _publish(cleared, tmp_path / "fifth-cleared", as_of)
    assert replays() == 5, "with no state file, each earlier release in the chain is made again from the ledger"
    assert _compared(tmp_path / "fifth-kept") == _compared(tmp_path / "fifth-cleared")
    assert with_state["details"]["files"] == without["details"]["files"]
    assert with_state["details"]["state_sha256"] != without["details"]["state_sha256"], "each state has its own salt"
    # and the one after: the cleared copy has the fifth's state, not the quarter release's
    _publish(kept, tmp_path / "sixth-kept", as_of)
    assert replays() == 1
    _publish(cleared, tmp_path / "sixth-cleared", as_of)
    assert replays() == 3, "the quarter release and the one before it are made again, the fifth is read"
    assert _compared(tmp_path / "sixth-kept") == _compared(tmp_path / "sixth-cleared")
    # publish verify --recompute does not read the state files: it makes the chain again
    report = kept.json("publish", "verify", str(tmp_path / "sixth-kept"), "--recompute")
    assert report["ok"], report
    assert replays() == 6


def _latest_checkpoint(custody: Custody) -> int:
    from custody.home import open_workspace
    from tests.cli.test_publish import _settings

    return int(open_workspace(_settings(custody.home)).ledger.checkpoint_rows()[-1]["size"])


def _hide_one(state: dict[str, Any]) -> None:
    """A value the release hid becomes one it published."""
    state["hidden"] = [row for row in state["hidden"] if row[3] == "earlier"] + \
        [row for row in state["hidden"] if row[3] != "earlier"][1:]


def _change_one(state: dict[str, Any]) -> None:
    """A value the release hid changes."""
    hidden = {tuple(row[:3]) for row in state["hidden"]}
    for row in state["values"]:
        if tuple(row[:3]) in hidden:
            row[3] += 1
            return
    raise AssertionError("the release hid nothing")


@pytest.mark.parametrize("tamper", [_hide_one, _change_one], ids=["hidden-made-published", "value-changed"])
def test_a_changed_state_file_is_not_used(small_year: SyntheticYear, tmp_path: Path, replays: Callable[[], int],
                                          tamper: Callable[[dict[str, Any]], None]) -> None:
    kept = _copy(small_year.custody.home, tmp_path / "kept", small_year.custody)
    _four_releases(kept, small_year, tmp_path / "kept-releases")
    tampered = _copy(kept.home, tmp_path / "tampered", kept)
    latest = _states(tampered)[-1]
    state = json.loads(latest.read_bytes())
    tamper(state)
    latest.write_text(json.dumps(state, separators=(",", ":")) + "\n")
    as_of = str(_latest_checkpoint(kept))
    replays()
    _publish(kept, tmp_path / "fifth-kept", as_of)
    assert replays() == 1
    _publish(tampered, tmp_path / "fifth-tampered", as_of)
    assert replays() == 2, "the changed state does not match its event's digest: that release is made again"
    assert _compared(tmp_path / "fifth-tampered") == _compared(tmp_path / "fifth-kept")
    assert tampered.json("publish", "verify", str(tmp_path / "fifth-tampered"), "--recompute")["ok"]


def test_the_state_stays_in_the_data_directory(small_year: SyntheticYear, tmp_path: Path) -> None:
    import hashlib

    kept = _copy(small_year.custody.home, tmp_path / "kept", small_year.custody)
    _four_releases(kept, small_year, tmp_path / "releases")
    states = _states(kept)
    for number, path in enumerate(states):
        release = tmp_path / "releases" / f"r{number + 1}"
        event = json.loads((release / "published-event.json").read_text())
        assert path.name == f"{event['seq']}-{event['hash']}.json"
        raw = path.read_bytes()
        assert event["details"]["state_sha256"] == hashlib.sha256(raw).hexdigest()
        state = json.loads(raw)
        names = {p.name for p in release.iterdir()}
        csvs = {n for n in names if n.endswith(".csv")}
        assert names - csvs == RELEASE_FILES | {"published-event.json", "published-event.tlog-proof",
                                                 "consistency-proof.txt", "verifier.key"}
        for name in names:
            content = (release / name).read_bytes()
            assert state["salt"].encode() not in content, name
            assert b'"equations":' not in content and b'"values":' not in content, name
        data = json.loads((release / "data.json").read_text())
        hidden = {tuple(row[:3]) for row in state["hidden"]}
        assert hidden, "the release hid something"
        for table in data["tables"]:
            for cell in table["cells"]:
                key = (table["name"], cell["period"], cell[table["column_dimension"]])
                shared = ("shared:" + table.get("measure", ""), key[1], key[2])
                if key in hidden or (table.get("measure") and key[2] == "Total" and shared in hidden):
                    assert cell["count"] is None and cell["suppressed"], (key, cell)
        for row in state["published"]:
            if row[3] is None:
                csv = (release / f"{row[0]}.csv").read_text()
                assert row[1] in csv

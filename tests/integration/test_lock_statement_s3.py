"""What a package tells a court about the retention lock of an S3 store rests on the last
recorded 'custody store check', not on the store's own claim: confirmed on Ceph RGW, stated as
NOT enforced on moto (which lets a COMPLIANCE retention be shortened), and "not tested" when no
check was made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Custody
from tests.integration.conftest import moto_lock_bucket
from tests.integration.test_cli_s3 import events, store_url

pytestmark = pytest.mark.integration

INCIDENT = "2026-1101-ICE-07"


def _package(custody: Custody, clip: Path, out: Path) -> tuple[str, str]:
    incident = f"{INCIDENT}-{out.name}"
    for args in (["incident", "create", incident, "--occurred-at", "2026-11-01T14:03:00-06:00", "--agency", "ICE"],
                 ["ingest", str(clip), "--incident", incident],
                 ["export", "--incident", incident, "--out", str(out), "--no-contact-sheets"]):
        result = custody(*args)
        assert result.exit_code == 0, (args, result.output)
    certification = " ".join((out / "hash-certification.txt").read_text().split())
    report = " ".join((out / "report.html").read_text().split())
    return certification, report


def test_on_ceph_rgw_the_lock_is_confirmed_by_the_recorded_check(custody: Custody, clips: list[Path], rgw_credentials: Any, rgw_url: str,
                                                                  tmp_path: Path) -> None:
    assert custody("init", "--store", rgw_url).exit_code == 0
    untested, _ = _package(custody, clips[0], tmp_path / "before")
    assert "by the storage server itself (S3 Object Lock)" in untested
    assert "This was not tested: no 'custody store check' of this store is recorded" in untested
    assert custody("store", "check").exit_code == 0
    [check] = [e for e in events(custody) if e["action"] == "store-checked"]
    assert check["details"]["enforced"] is True
    certification, report = _package(custody, clips[1], tmp_path / "after")
    assert f"Confirmed by 'custody store check' (ledger event {check['seq']}," in certification
    assert "by the storage server itself (S3 Object Lock)" in certification
    assert f"Confirmed by &#39;custody store check&#39; (ledger event {check['seq']}," in report
    assert custody("verify-package", str(tmp_path / "after")).exit_code == 0


def test_on_a_server_that_does_not_enforce_it_the_package_says_so(custody: Custody, clips: list[Path], moto_server: Any,
                                                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bucket, _ = moto_lock_bucket(monkeypatch, moto_server, "custody-moto-lock")
    assert custody("init", "--store", store_url(bucket, moto_server.endpoint)).exit_code == 0
    assert custody("store", "check").exit_code == 3
    [check] = [e for e in events(custody) if e["action"] == "store-checked"]
    certification, report = _package(custody, clips[0], tmp_path / "pkg")
    assert "Where the lock is enforced: NOT by the storage server, as tested." in certification
    assert f"(ledger event {check['seq']}," in certification
    assert "shorten-retention, switch-to-governance" in certification
    assert "no user of the storage, its administrators included, can delete" not in certification
    assert "<strong>Where the lock is enforced: NOT by the storage server, as tested." in report
    assert "no one, administrators included" not in report

"""`custody audit` against a real Ceph RGW with Object Lock, and against moto's S3 server.

The damage is done behind the tool's back with independent means: a plain boto3 client with the
gateway's keys (an unrecorded object; a legal hold switched off, which S3 allows anyone with
PutObjectLegalHold to do), and the ``rados`` tool writing straight into the RADOS object that
holds an S3 object's bytes (a flipped byte that keeps the size, the ETag and the metadata; a
lost object). Object Lock forbids both through S3, which is exactly why they stand for bit rot
and for tampering below the gateway.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import blake3
import pytest

from custody.ledger.database import Ledger
from storage.s3 import S3Store
from tests.conftest import Custody, require_tool
from tests.integration.conftest import moto_lock_bucket

pytestmark = pytest.mark.integration

CephRgw = Any
MotoServer = Any
DATA_POOL = "default.rgw.buckets.data"


def _prefix(url: str) -> str:
    return url.split("?")[0].split("/", 3)[3] + "/"


def _ingest(custody: Custody, directory: Path, count: int, size: int = 20_000) -> list[str]:
    directory.mkdir()
    digests = []
    for index in range(count):
        data = os.urandom(size + index)
        (directory / f"BWC-{index:03d}.mp4").write_bytes(data)
        digests.append(blake3.blake3(data).hexdigest())
    result = custody("ingest", str(directory))
    assert result.exit_code == 0, result.output
    return sorted(digests)


def _audit(custody: Custody, *args: str) -> tuple[int, dict[str, Any]]:
    result = custody("audit", *args, "--json")
    assert result.exit_code in (0, 3), result.output
    return result.exit_code, json.loads(result.stdout)


def _audited(custody: Custody) -> list[dict[str, Any]]:
    result = custody("log", "--json")
    assert result.exit_code == 0, result.output
    return [e for e in json.loads(result.stdout) if e["action"] == "audited"]


def _version(custody: Custody, digest: str) -> str:
    row = Ledger(f"sqlite:///{custody.home / 'custody.db'}").evidence_row(digest)
    assert row is not None
    return str(row["version"])


def _rados(rgw: CephRgw, *args: str, data: bytes | None = None) -> bytes:
    rados = require_tool("rados")
    done = subprocess.run([rados, "-c", str(rgw.directory / "ceph.conf"), "-p", DATA_POOL, *args],
                          input=data, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _head_object(rgw: CephRgw, full_key: str, version: str) -> str:
    """The RADOS object holding the first 4 MiB (here: all) of one S3 object version."""
    [name] = [n for n in _rados(rgw, "ls").decode().split() if n.endswith(f"__:{version}_{full_key}")]
    return name


def test_a_flipped_byte_on_ceph_rgw_is_found_by_full_and_not_by_quick(
    custody: Custody, rgw_credentials: CephRgw, rgw_url: str, rgw_bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    assert custody("init", "--store", rgw_url).exit_code == 0
    digests = _ingest(custody, tmp_path / "export", 3)
    victim = digests[1]
    full_key = _prefix(rgw_url) + f"evidence/{victim}"
    version = _version(custody, victim)
    name = _head_object(rgw_credentials, full_key, version)
    original = _rados(rgw_credentials, "get", name, "-")
    _rados(rgw_credentials, "put", name, "-", "--offset", "1000", data=bytes([original[1000] ^ 0x01]))
    served = s3_admin.get_object(Bucket=rgw_bucket, Key=full_key, VersionId=version)
    body = served["Body"].read()
    altered = blake3.blake3(body).hexdigest()
    assert altered != victim and len(body) == len(original)
    head = s3_admin.head_object(Bucket=rgw_bucket, Key=full_key, VersionId=version)
    assert head["Metadata"]["blake3"] == victim and head["ObjectLockMode"] == "COMPLIANCE"

    # quick only asks the server (HEAD, retention, hold): size and metadata are intact.
    code, quick = _audit(custody)
    assert code == 0 and quick["findings"] == [], "quick is not supposed to read object bytes"
    assert quick["worm"] == "server" and quick["canary"]["enforced"] is True

    code, full = _audit(custody, "--level", "full", "--workers", "4")
    assert code == 3
    [finding] = full["findings"]
    assert (finding["kind"], finding["subject"], finding["algorithm"], finding["expected"], finding["found"]) == (
        "mismatch", victim, "blake3", victim, altered)
    assert (finding["source"], finding["key"], finding["version"]) == ("content", f"evidence/{victim}", version)
    assert full["counts"]["rehashed"] == 3
    assert full["counts"]["bytes_hashed"] == sum(20_000 + i for i in range(3))
    events = _audited(custody)
    assert [e["details"]["level"] for e in events] == ["quick", "full"]
    assert events[0]["details"]["findings"] == [] and events[1]["details"]["findings"] == [finding]
    assert events[1]["details"]["canary"]["enforced"] is True and events[1]["details"]["worm"] == "server"


def test_removed_unrecorded_and_unheld_objects_on_ceph_rgw_are_found_by_quick(
    custody: Custody, rgw_credentials: CephRgw, rgw_url: str, rgw_bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    assert custody("init", "--store", rgw_url).exit_code == 0
    digests = _ingest(custody, tmp_path / "export", 4)
    prefix = _prefix(rgw_url)
    removed, held = digests[0], digests[1]

    # A hold placed the tool's way: on the stored version, then in the ledger.
    store = S3Store.from_url(rgw_url)
    assert store.set_legal_hold(f"evidence/{held}", _version(custody, held), True).legal_hold is True
    Ledger(f"sqlite:///{custody.home / 'custody.db'}").append(
        "hold-placed", actor="clerk", subject={"evidence": held},
        details={"hold": "case-26-CR-0193", "authority": "order 17", "reason": "trial"})
    code, report = _audit(custody)
    assert code == 0, report["findings"]

    # Behind the tool's back: the object's RADOS data lost, a stray object, the hold switched off.
    _rados(rgw_credentials, "rm", _head_object(rgw_credentials, prefix + f"evidence/{removed}", _version(custody, removed)))
    stray = os.urandom(3000)
    stray_key = f"evidence/{blake3.blake3(stray).hexdigest()}"
    s3_admin.put_object(Bucket=rgw_bucket, Key=prefix + stray_key, Body=stray)
    s3_admin.put_object_legal_hold(Bucket=rgw_bucket, Key=prefix + f"evidence/{held}",
                                   VersionId=_version(custody, held), LegalHold={"Status": "OFF"})
    assert s3_admin.get_object_legal_hold(Bucket=rgw_bucket, Key=prefix + f"evidence/{held}",
                                          VersionId=_version(custody, held))["LegalHold"]["Status"] == "OFF"

    # The stray was stored a moment ago (RGW's LastModified): in flight, as an ingest's would be.
    code, report = _audit(custody)
    assert code == 3 and report["counts"]["unrecorded"] == 0
    [in_flight] = report["in_flight"]["objects"]
    assert in_flight["key"] == stray_key and in_flight["size"] == 3000 and in_flight["stored_at"]
    code, report = _audit(custody, "--in-flight-grace", "0")
    assert code == 3
    found = sorted((f["kind"], f["subject"]) for f in report["findings"])
    assert found == sorted([("missing", removed), ("hold-mismatch", held), ("unrecorded", stray_key)])
    hold = next(f for f in report["findings"] if f["kind"] == "hold-mismatch")
    assert (hold["expected"], hold["found"]) == ("on", "off")
    unrecorded = next(f for f in report["findings"] if f["kind"] == "unrecorded")
    assert unrecorded["size"] == 3000 and unrecorded["version"]
    assert report["counts"]["objects"] == 4 and report["counts"]["unrecorded"] == 1

    event = _audited(custody)[-1]
    assert event["seq"] == report["seq"]
    assert event["details"]["findings"] == report["findings"]
    assert event["details"]["findings_by_kind"] == {
        "hold-mismatch": 1, "ledger-corrupt": 0, "mismatch": 0, "missing": 1, "staging-leftover": 0, "store-not-enforcing": 0,
        "unreadable": 0, "unrecorded": 1, "weak-retention": 0}
    assert event["details"]["counts"]["findings"] == 3
    assert custody("ledger", "verify").exit_code == 0


def test_shards_and_rotation_on_ceph_rgw_cover_every_object(
    custody: Custody, rgw_credentials: CephRgw, rgw_url: str, tmp_path: Path
) -> None:
    assert custody("init", "--store", rgw_url).exit_code == 0
    digests = _ingest(custody, tmp_path / "export", 8, size=2_000)
    shards = []
    for index in (1, 2):
        code, report = _audit(custody, "--level", "full", "--shard", f"{index}/2")
        assert code == 0, report["findings"]
        shards.append({o["blake3"] for o in report["objects"] if o["hashed"]})
        assert shards[-1] == {d for d in digests if int(d[:16], 16) % 2 + 1 == index}
    assert shards[0] | shards[1] == set(digests) and not shards[0] & shards[1]

    rotated = []
    for expected_slot in (0, 1):
        code, report = _audit(custody, "--rotation", "2")
        assert code == 0 and report["rotation"] == {"n": 2, "slot": expected_slot}
        rotated.append({o["blake3"] for o in report["objects"] if o["hashed"]})
    assert rotated[0] | rotated[1] == set(digests) and not rotated[0] & rotated[1]
    assert all(o["last_full_check"]["seq"] == report["seq"] for o in report["objects"] if o["blake3"] in rotated[1])
    assert [e["details"]["rotation"] for e in _audited(custody)] == [None, None, {"n": 2, "slot": 0}, {"n": 2, "slot": 1}]


def test_the_canary_against_moto_is_reported_as_store_not_enforcing(
    custody: Custody, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, _ = moto_lock_bucket(monkeypatch, moto_server, "custody-audit-moto")
    url = f"s3://{bucket}?endpoint_url={moto_server.endpoint}&region=us-east-1"
    assert custody("init", "--store", url).exit_code == 0

    result = custody("audit", "--json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    [finding] = report["findings"]
    assert (finding["kind"], finding["subject"]) == ("store-not-enforcing", f"s3://{bucket} at {moto_server.endpoint}")
    assert finding["probes"] == ["shorten-retention", "switch-to-governance"]
    assert report["canary"]["enforced"] is False and report["worm"] == "server"
    [event] = _audited(custody)
    assert event["details"]["canary"]["enforced"] is False
    assert [(p["action"], p["refused"]) for p in event["details"]["canary"]["probes"]] == [
        ("delete-version", True), ("shorten-retention", False), ("switch-to-governance", False)]
    assert event["details"]["findings"] == [finding]
    human = custody("audit")
    assert human.exit_code == 3
    assert "  canary: NOT ENFORCED" in human.stdout
    assert f"store-not-enforcing: s3://{bucket} at {moto_server.endpoint}: the store let a locked canary" in human.stdout

"""``custody ledger publish s3://BUCKET/PREFIX`` on a real Ceph RGW: the tiles and checkpoint
fetched anonymously over plain HTTP (a public-read bucket policy, as a public static log would
have) carry the headers of a static log, and Go's sumdb/tlog proves inclusion and consistency
from that mirror; a second publication writes only the new tiles and the checkpoint (the
bucket is versioned: no old tile gets a second version)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Custody
from tests.integration.conftest import CephRgw
from tests.integration.test_public_log import _append, _check, _leaf, tlogcheck

__all__ = ["tlogcheck"]

TILE_CACHE = "public, max-age=31536000, immutable"


@pytest.fixture
def public_bucket(rgw_credentials: CephRgw, s3_admin: Any) -> str:
    """A versioned bucket that anyone may read (no Object Lock: a public log is a static site)."""
    bucket = f"public-log-{uuid.uuid4().hex[:10]}"
    s3_admin.create_bucket(Bucket=bucket)
    s3_admin.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3_admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                       "Resource": [f"arn:aws:s3:::{bucket}/*"]}],
    }))
    return bucket


def _versions(s3_admin: Any, bucket: str, prefix: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for page in s3_admin.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            key = version["Key"][len(prefix):]
            counts[key] = counts.get(key, 0) + 1
    return counts


def _mirror(endpoint: str, bucket: str, prefix: str, keys: list[str], into: Path) -> dict[str, dict[str, str]]:
    """Fetch ``keys`` anonymously over plain HTTP into ``into``; their response headers."""
    headers = {}
    for key in keys:
        with urllib.request.urlopen(f"{endpoint}/{bucket}/{prefix}{key}", timeout=30) as response:
            target = into / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(response.read())
            headers[key] = {"type": response.headers.get("Content-Type", ""),
                            "cache": response.headers.get("Cache-Control", "")}
    return headers


def test_publish_to_s3_is_incremental_and_go_tlog_verifies_the_public_mirror(
    initialized: Custody, ceph_rgw: CephRgw, public_bucket: str, s3_admin: Any, tlogcheck: Path, tmp_path: Path
) -> None:
    vkey = initialized("ledger", "key").stdout.strip()
    prefix = "custody-log/"
    url = f"s3://{public_bucket}/custody-log?endpoint_url={ceph_rgw.endpoint}&region=us-east-1"
    _append(initialized, 300)
    first = initialized.json("ledger", "publish", url)
    assert (first["size"], first["previous_size"], first["tiles_written"]) == (300, 0, 3)
    assert first["directory"] == f"s3://{public_bucket}/custody-log"
    after_first = _versions(s3_admin, public_bucket, prefix)
    assert after_first == {"checkpoint": 1, "tile/0/000": 1, "tile/0/001.p/44": 1, "tile/1/000.p/1": 1}
    mirror = tmp_path / "mirror"
    headers = _mirror(ceph_rgw.endpoint, public_bucket, prefix, sorted(after_first), mirror)
    for key, seen in headers.items():
        if key == "checkpoint":
            assert seen["type"].startswith("text/plain") and seen["cache"].startswith("public, max-age=")
            assert int(seen["cache"].split("max-age=")[1]) <= 300, "a checkpoint is cached briefly"
        else:
            assert (seen["type"], seen["cache"]) == ("application/octet-stream", TILE_CACHE), key
    assert (mirror / "tile/0/000").stat().st_size == 256 * 32
    old = tmp_path / "checkpoint-300"
    old.write_bytes((mirror / "checkpoint").read_bytes())

    _append(initialized, 700)
    second = initialized.json("ledger", "publish", url)
    assert (second["size"], second["previous_size"], second["tiles_written"]) == (1000, 300, 4)
    after_second = _versions(s3_admin, public_bucket, prefix)
    new = {"tile/0/001", "tile/0/002", "tile/0/003.p/232", "tile/1/000.p/3"}
    assert set(after_second) == set(after_first) | new
    assert after_second["checkpoint"] == 2, "the checkpoint is replaced"
    assert all(after_second[key] == 1 for key in after_second if key != "checkpoint"), "no tile written twice"

    headers = _mirror(ceph_rgw.endpoint, public_bucket, prefix, sorted(after_second), mirror)
    assert (mirror / "checkpoint").read_text().split("\n")[1] == "1000"
    for index in (0, 299, 777, 999):
        result = _check(tlogcheck, mirror, vkey, old, index, _leaf(initialized, index, tmp_path / f"leaf-{index}"))
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[:2] == [f"inclusion OK: leaf {index} in tree 1000",
                                                  "consistency OK: tree 1000 extends tree 300"]
    refused = _check(tlogcheck, mirror, vkey, old, 6, _leaf(initialized, 5, tmp_path / "leaf-5"))
    assert refused.returncode == 1 and "FAIL: inclusion" in refused.stderr

    again = initialized.json("ledger", "publish", url)
    assert (again["size"], again["tiles_written"]) == (1000, 0)
    assert _versions(s3_admin, public_bucket, prefix) == {**after_second, "checkpoint": 3}


def test_publish_to_s3_refuses_a_ledger_that_no_longer_extends_the_published_log(
    initialized: Custody, ceph_rgw: CephRgw, public_bucket: str, s3_admin: Any
) -> None:
    url = f"s3://{public_bucket}/log?endpoint_url={ceph_rgw.endpoint}&region=us-east-1"
    _append(initialized, 10)
    initialized.json("ledger", "publish", url)
    body = s3_admin.get_object(Bucket=public_bucket, Key="log/checkpoint")["Body"].read().decode()
    lines = body.split("\n")
    lines[1] = "11"
    s3_admin.put_object(Bucket=public_bucket, Key="log/checkpoint", Body="\n".join(lines).encode())
    result = initialized("ledger", "publish", url)
    assert result.exit_code == 3
    assert "the published log has 11 entries but this ledger's checkpoint has 10" in result.stderr
    assert f"s3://{public_bucket}/log/checkpoint" in result.stderr
    tiles = [k for k in _versions(s3_admin, public_bucket, "log/") if k.startswith("tile/")]
    assert tiles == ["tile/0/000.p/10"], "nothing more was written"
    missing = initialized("ledger", "publish", f"s3://no-such-log-bucket/log?endpoint_url={ceph_rgw.endpoint}")
    assert missing.exit_code == 5
    assert "bucket no-such-log-bucket does not exist" in missing.stderr and "Object Lock" not in missing.stderr

"""Legal holds, retention changes and disposition on a real Ceph RGW, each checked with an
independent boto3 client (not the project's code)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Custody

pytestmark = pytest.mark.integration


def _s3_key(url: str, key: str) -> str:
    prefix = urlsplit(url).path.strip("/")
    return f"{prefix}/{key}" if prefix else key


@pytest.fixture
def on_rgw(custody: Custody, rgw_url: str, rgw_credentials: Any) -> tuple[Custody, str]:
    result = custody("init", "--store", rgw_url)
    assert result.exit_code == 0, result.output
    return custody, rgw_url


def _ingest(custody: Custody, tmp_path: Path, n: int, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    paths = []
    for index in range(n):
        path = tmp_path / f"rgw-clip-{index}.mp4"
        path.write_bytes(f"rgw footage {index} {time.time_ns()}".encode() * 64)
        paths.append(str(path))
    result = custody("ingest", *paths, *extra, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _version(custody: Custody, blake3: str) -> str:
    return str(custody.json("show", blake3[:12])["version"])


def test_hold_is_placed_and_released_on_the_server(on_rgw: tuple[Custody, str], s3_admin: Any, rgw_bucket: str, tmp_path: Path) -> None:
    custody, url = on_rgw
    custody("incident", "create", "RGW-1", "--location", "Cermak")
    [record] = _ingest(custody, tmp_path, 1, ("--incident", "RGW-1"))
    key = _s3_key(url, f"evidence/{record['blake3']}")
    version = _version(custody, record["blake3"])
    placed = custody("hold", "place", "SAO-RGW", "--authority", "SAO", "--reason", "felony review", "--incident", "RGW-1")
    assert placed.exit_code == 0, placed.output
    hold = s3_admin.get_object_legal_hold(Bucket=rgw_bucket, Key=key, VersionId=version)
    assert hold["LegalHold"]["Status"] == "ON"
    with pytest.raises(ClientError):
        s3_admin.delete_object(Bucket=rgw_bucket, Key=key, VersionId=version)
    released = custody("hold", "release", "SAO-RGW", "--authority", "court order", "--reason", "closed")
    assert released.exit_code == 0, released.output
    hold = s3_admin.get_object_legal_hold(Bucket=rgw_bucket, Key=key, VersionId=version)
    assert hold["LegalHold"]["Status"] == "OFF"


def test_flag_extends_retention_on_the_server_and_shortening_is_refused(
    on_rgw: tuple[Custody, str], s3_admin: Any, rgw_bucket: str, tmp_path: Path
) -> None:
    custody, url = on_rgw
    (custody.home / "config.toml").write_text(
        (custody.home / "config.toml").read_text() + '\n[retention.categories.short]\ndays = 10\nstarts = "ingest"\n'
    )
    [record] = _ingest(custody, tmp_path, 1)
    key = _s3_key(url, f"evidence/{record['blake3']}")
    version = _version(custody, record["blake3"])
    before = s3_admin.get_object_retention(Bucket=rgw_bucket, Key=key, VersionId=version)["Retention"]
    refused = custody("retention", "set", record["blake3"][:12], "--category", "short")
    assert refused.exit_code == 4 and "shorten" in refused.stderr
    same = s3_admin.get_object_retention(Bucket=rgw_bucket, Key=key, VersionId=version)["Retention"]
    assert same["RetainUntilDate"] == before["RetainUntilDate"]
    flagged = custody("retention", "flag", record["blake3"][:12], "--reason", "use of force")
    assert flagged.exit_code == 0, flagged.output
    after = s3_admin.get_object_retention(Bucket=rgw_bucket, Key=key, VersionId=version)["Retention"]
    assert after["Mode"] == "COMPLIANCE"
    expected = datetime.now(timezone.utc) + timedelta(days=730)
    assert abs((after["RetainUntilDate"] - expected).total_seconds()) < 600


def test_dispose_deletes_only_the_expired_unheld_version_on_the_server(
    on_rgw: tuple[Custody, str], s3_admin: Any, rgw_bucket: str, tmp_path: Path
) -> None:
    custody, url = on_rgw
    (custody.home / "config.toml").write_text(
        (custody.home / "config.toml").read_text() + "\n[retention.categories.unflagged]\ndays = 0\nseconds = 3\n"
    )
    plain, held = _ingest(custody, tmp_path, 2)
    assert custody("hold", "place", "KEEP", "--authority", "court", "--reason", "r", held["blake3"][:12]).exit_code == 0
    versions = {r["blake3"]: _version(custody, r["blake3"]) for r in (plain, held)}
    time.sleep(4.5)
    done = custody.json("dispose", "--expired", "--confirm")
    assert [o["blake3"] for o in done["objects"]] == [plain["blake3"]]
    remaining = s3_admin.list_object_versions(Bucket=rgw_bucket, Prefix=_s3_key(url, "evidence/")).get("Versions", [])
    present = {(v["Key"], v["VersionId"]) for v in remaining}
    assert (_s3_key(url, f"evidence/{plain['blake3']}"), versions[plain["blake3"]]) not in present
    assert (_s3_key(url, f"evidence/{held['blake3']}"), versions[held["blake3"]]) in present
    event = custody.json("log", plain["blake3"][:12])[-1]
    assert event["action"] == "disposed" and event["details"]["sha256"] == plain["sha256"]

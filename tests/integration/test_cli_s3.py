"""The `custody` command line against a real Ceph RGW (and, for contrast, moto's S3 server).

Every claim about what the server holds and how it is locked is checked with an independent
plain boto3 client (``s3_admin`` or one built here with the gateway's keys), never only through
the project's own code. The crash test runs `custody ingest` as a real process and SIGKILLs the
radosgw of a private cluster while the multipart upload is in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import blake3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import Custody
from tests.integration.conftest import REPO, admin_client, moto_lock_bucket

pytestmark = pytest.mark.integration

MiB = 1 << 20
CephRgw = Any
MotoServer = Any
DAY = timedelta(days=1)
BIG_FILE = 80 * MiB
"""Sent as a multipart upload with ``MULTIPART`` in the store URL (by default a file this size
goes up in one PutObject)."""
MULTIPART = "&multipart_threshold_mib=64"


def store_url(bucket: str, endpoint: str, prefix: str = "") -> str:
    return f"s3://{bucket}{'/' + prefix if prefix else ''}?endpoint_url={endpoint}&region=us-east-1"


def server_now(client: Any, bucket: str) -> datetime:
    header = client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]["date"]
    return parsedate_to_datetime(header).astimezone(timezone.utc)


def versions(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    return list(client.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", []))


def delete_is_refused(client: Any, bucket: str, key: str, version: str) -> None:
    """The server refuses to delete this version, and it is still there afterwards."""
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert version in [v["VersionId"] for v in versions(client, bucket, key) if v["Key"] == key]


def retention_of(client: Any, bucket: str, key: str, version: str) -> tuple[str, datetime]:
    found = client.get_object_retention(Bucket=bucket, Key=key, VersionId=version)["Retention"]
    return found["Mode"], found["RetainUntilDate"].astimezone(timezone.utc)


def config_store(home: Path) -> str | None:
    path = home / "config.toml"
    return tomllib.loads(path.read_text()).get("store") if path.exists() else None


def events(custody: Custody) -> list[dict[str, Any]]:
    result = custody("log", "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


# ---- 1. init --create-bucket, ingest, and what the server really holds --------------------------


def test_init_creates_a_lock_bucket_and_ingested_clips_are_locked_by_the_server(
    custody: Custody, clips: list[Path], rgw_credentials: CephRgw, s3_admin: Any
) -> None:
    endpoint = rgw_credentials.endpoint
    bucket = f"custody-cli-{uuid.uuid4().hex[:8]}"
    url = store_url(bucket, endpoint)

    init = custody("init", "--store", url, "--create-bucket")
    assert init.exit_code == 0, init.output
    assert f"store:          s3://{bucket} at {endpoint}" in init.stdout
    lock = s3_admin.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 90}
    assert s3_admin.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert config_store(custody.home) == url

    # No --store from now on: the remembered one is used.
    ingest = custody("ingest", *map(str, clips), "--json")
    assert ingest.exit_code == 0, ingest.output
    records = json.loads(ingest.stdout)
    assert [r["status"] for r in records] == ["recorded"] * 3
    now = server_now(s3_admin, bucket)

    # The ingest's signed checkpoint (of its 3 events) went into WORM storage, locked for years.
    [checkpoint] = versions(s3_admin, bucket, "checkpoints/")
    assert checkpoint["Key"] == f"checkpoints/{3:016d}"
    note = s3_admin.get_object(Bucket=bucket, Key=checkpoint["Key"])["Body"].read().decode()
    assert note.split("\n")[1] == "3" and "\n\n\u2014 " in note
    mode, until = retention_of(s3_admin, bucket, checkpoint["Key"], checkpoint["VersionId"])
    assert mode == "COMPLIANCE" and until > now + 3000 * DAY
    delete_is_refused(s3_admin, bucket, checkpoint["Key"], checkpoint["VersionId"])

    for clip, record in zip(clips, records):
        data = clip.read_bytes()
        b3, sha = blake3.blake3(data).hexdigest(), hashlib.sha256(data).hexdigest()
        assert (record["blake3"], record["sha256"], record["store_key"]) == (b3, sha, f"evidence/{b3}")
        key = f"evidence/{b3}"
        [stored] = versions(s3_admin, bucket, key)
        version = stored["VersionId"]
        assert stored["Size"] == len(data)
        head = s3_admin.head_object(Bucket=bucket, Key=key, VersionId=version)
        assert head["Metadata"] == {"sha256": sha, "blake3": b3}
        body = s3_admin.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == sha
        mode, until = retention_of(s3_admin, bucket, key, version)
        assert mode == "COMPLIANCE"
        assert now + 90 * DAY - timedelta(minutes=10) <= until <= now + 90 * DAY + timedelta(minutes=10)
        delete_is_refused(s3_admin, bucket, key, version)

        shown = custody("show", b3[:12], "--json")
        assert shown.exit_code == 0, shown.output
        record_shown = json.loads(shown.stdout)
        assert record_shown["store_status"] == "present"
        assert record_shown["version"] == version
        assert record_shown["store"] == f"s3://{bucket} at {endpoint}"
        assert record_shown["retention"] == {
            "mode": "COMPLIANCE", "until": until.isoformat(timespec="seconds").replace("+00:00", "Z")
        }
        assert record_shown["legal_hold"] is False

    prefix = records[1]["blake3"][:10]
    verified = custody("verify", prefix)
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith(f"OK      {prefix}  {records[1]['blake3']}")
    ledger = custody("ledger", "verify")
    assert ledger.exit_code == 0, ledger.output
    recorded = events(custody)
    assert [e["action"] for e in recorded[:3]] == ["ingested"] * 3
    checkpoints = versions(s3_admin, bucket, "checkpoints/")
    assert f"ledger OK: {len(recorded)} events" in ledger.stdout
    assert f"{len(checkpoints)} WORM checkpoint(s) consistent" in ledger.stdout


# ---- 2. a bucket without Object Lock is refused ------------------------------------------------


def test_init_refuses_a_bucket_without_object_lock_and_remembers_nothing(
    custody: Custody, rgw_credentials: CephRgw, s3_admin: Any
) -> None:
    endpoint = rgw_credentials.endpoint
    bucket = f"custody-nolock-{uuid.uuid4().hex[:8]}"
    s3_admin.create_bucket(Bucket=bucket)
    s3_admin.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    url = store_url(bucket, endpoint)

    for flags in ([], ["--create-bucket"]):
        result = custody("init", "--store", url, *flags)
        assert result.exit_code == 5, (flags, result.output)
        assert result.stderr.startswith(
            f"custody: error: bucket {bucket} at {endpoint} does not have S3 Object Lock enabled"
        ), result.stderr
        assert "Create a new bucket with Object Lock enabled" in result.stderr
        assert "aws s3api create-bucket --bucket NEW --object-lock-enabled-for-bucket" in result.stderr
        assert result.stdout == ""
        assert config_store(custody.home) is None
    # --create-bucket did not touch the existing bucket, and nothing was written into it.
    with pytest.raises(ClientError):
        s3_admin.get_object_lock_configuration(Bucket=bucket)
    assert versions(s3_admin, bucket, "") == []


# ---- 3. store check: a real server enforces, moto does not ----------------------------------------


PROBES = ["delete-version", "shorten-retention", "switch-to-governance"]


def test_store_check_on_ceph_rgw_is_enforced_and_recorded(
    custody: Custody, rgw_credentials: CephRgw, rgw_url: str, rgw_bucket: str, s3_admin: Any
) -> None:
    init = custody("init", "--store", rgw_url)
    assert init.exit_code == 0, init.output
    result = custody("store", "check")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    probe_lines = [line.split()[0:2] for line in lines[1:4]]
    assert probe_lines == [[action, "refused:"] for action in PROBES], result.stdout
    assert "ALLOWED" not in result.stdout
    assert lines[-1] == "verdict: enforced by the storage server"

    [event] = events(custody)
    assert event["action"] == "store-checked"
    assert event["details"]["enforced"] is True and event["details"]["worm"] == "server"
    assert [(p["action"], p["refused"]) for p in event["details"]["probes"]] == [(a, True) for a in PROBES]
    # Independently: all three canaries are still there, still under COMPLIANCE retention.
    prefix = rgw_url.split("?")[0].split("/", 3)[3] + "/canary/"
    canaries = versions(s3_admin, rgw_bucket, prefix)
    assert len(canaries) == 3
    for canary in canaries:
        assert retention_of(s3_admin, rgw_bucket, canary["Key"], canary["VersionId"])[0] == "COMPLIANCE"
    assert custody("ledger", "verify").exit_code == 0


def test_store_check_on_moto_reports_not_enforced_and_records_it(
    custody: Custody, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, moto = moto_lock_bucket(monkeypatch, moto_server, "custody-moto")
    init = custody("init", "--store", store_url(bucket, moto_server.endpoint))
    assert init.exit_code == 0, init.output

    result = custody("store", "check")
    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines()[-1] == (
        "verdict: NOT ENFORCED: this store lets locked evidence be deleted or weakened"
    )
    # moto refuses the delete but lets a COMPLIANCE retention be shortened and weakened.
    for action in ("shorten-retention", "switch-to-governance"):
        assert f"{action:<22} ALLOWED: the server accepted the request" in result.stdout
    [event] = events(custody)
    assert event["action"] == "store-checked"
    assert event["details"]["enforced"] is False and event["details"]["worm"] == "server"
    assert [(p["action"], p["refused"]) for p in event["details"]["probes"]] == [
        ("delete-version", True), ("shorten-retention", False), ("switch-to-governance", False)
    ]
    # Independently (HeadObject: moto 5.2's GetObjectRetention with a VersionId answers 500):
    # moto really shortened one "COMPLIANCE" canary by 30 s and switched another to GOVERNANCE.
    locks = sorted(
        (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"])
        for head in (moto.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
                     for v in versions(moto, bucket, "canary/"))
    )
    assert [mode for mode, _ in locks] == ["COMPLIANCE", "COMPLIANCE", "GOVERNANCE"]
    assert timedelta(seconds=25) <= locks[1][1] - locks[0][1] <= timedelta(seconds=35), (
        "the canaries are written a moment apart; one of them was shortened by 30 s"
    )


# ---- 4. the gateway dies in the middle of a multipart upload ------------------------------------


def _run_ingest(home: Path, path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "tech-0412",
           "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop("CUSTODY_STORE", None)
    env.pop("CUSTODY_DB", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ingest", str(path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_upload(admin: Any, bucket: str, process: subprocess.Popen[str], timeout: float = 60) -> str:
    """Poll ListMultipartUploads until the ingest has started its upload; return the key."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        uploads = admin.list_multipart_uploads(Bucket=bucket, Prefix="evidence/").get("Uploads", [])
        if uploads:
            return str(uploads[0]["Key"])
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"ingest ended (exit {process.returncode}) before its upload was seen: {out}{err}")
        time.sleep(0.01)
    process.kill()
    pytest.fail("no multipart upload appeared within 60 s")


def test_gateway_killed_during_a_multipart_ingest_records_nothing_and_a_rerun_succeeds(
    custody: Custody, private_rgw: CephRgw, tmp_path: Path
) -> None:
    endpoint = private_rgw.endpoint
    admin = admin_client(private_rgw)
    bucket = f"custody-crash-{uuid.uuid4().hex[:8]}"
    init = custody("init", "--store", store_url(bucket, endpoint) + MULTIPART, "--create-bucket")
    assert init.exit_code == 0, init.output
    footage = tmp_path / "BWC-long.mp4"
    footage.write_bytes(os.urandom(BIG_FILE))
    data = footage.read_bytes()
    b3, sha = blake3.blake3(data).hexdigest(), hashlib.sha256(data).hexdigest()
    key = f"evidence/{b3}"

    process = _run_ingest(custody.home, footage)
    assert _wait_for_upload(admin, bucket, process) == key
    private_rgw.kill_gateway()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 5, (out, err)
    assert err.startswith(f"custody: error: cannot reach the S3 endpoint {endpoint} (bucket {bucket}) while "), err
    assert key in err and "check the endpoint URL, the network and that the server is running" in err
    assert "Traceback" not in err and out == ""
    assert events(custody) == []

    private_rgw.start_gateway()
    assert versions(admin, bucket, "evidence/") == []
    assert versions(admin, bucket, "checkpoints/") == []

    process = _run_ingest(custody.home, footage)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, (out, err)
    assert out.startswith(f"{'recorded':<15} {b3[:16]} ")
    [event] = events(custody)
    assert event["action"] == "ingested" and event["subject"] == {"evidence": b3}
    assert event["details"]["sha256"] == sha and event["details"]["size"] == BIG_FILE
    assert "recovered" not in event["details"]
    [stored] = versions(admin, bucket, key)
    assert stored["Size"] == BIG_FILE and event["details"]["store"]["version"] == stored["VersionId"]
    assert admin.head_object(Bucket=bucket, Key=key)["Metadata"] == {"sha256": sha, "blake3": b3}
    assert retention_of(admin, bucket, key, stored["VersionId"])[0] == "COMPLIANCE"
    delete_is_refused(admin, bucket, key, stored["VersionId"])
    assert admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert custody("ledger", "verify").exit_code == 0


# ---- 5. wrong credentials -------------------------------------------------------------------------


def test_ingest_with_a_wrong_secret_exits_5_without_revealing_it(
    custody: Custody, clips: list[Path], rgw_credentials: CephRgw, rgw_url: str, rgw_bucket: str,
    s3_admin: Any,
) -> None:
    init = custody("init", "--store", rgw_url)
    assert init.exit_code == 0, init.output
    wrong = "wrongsecret" + uuid.uuid4().hex
    result = custody("ingest", str(clips[0]), env={"AWS_SECRET_ACCESS_KEY": wrong})
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith("custody: error: "), result.stderr
    assert rgw_bucket in result.stderr and rgw_credentials.endpoint in result.stderr
    assert "check the credentials" in result.stderr or "rejected the credentials" in result.stderr
    for text in (result.stdout, result.stderr):
        assert wrong not in text and rgw_credentials.secret_key not in text
    assert events(custody) == []
    prefix = rgw_url.split("?")[0].split("/", 3)[3] + "/"
    assert versions(s3_admin, rgw_bucket, prefix) == []

"""Least privilege on S3: infra/s3-policies/bucket-policy.json applied to a real Ceph RGW bucket
with real users; and the Terraform module for AWS renders the very same policy document."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from string import Template
from typing import Any

import pytest

from tests.conftest import Custody, require_tool, use_credentials
from tests.integration.conftest import REPO, CephRgw, admin_client

pytestmark = pytest.mark.integration

POLICY = REPO / "infra" / "s3-policies" / "bucket-policy.json"
TERRAFORM_POLICIES = REPO / "infra" / "terraform" / "policies"


def render(bucket: str, station: str, auditor: str) -> dict[str, Any]:
    """The bucket policy of infra/s3-policies with its placeholders filled in."""
    text = Template(POLICY.read_text()).substitute(bucket=bucket, station_principal=station, auditor_principal=auditor)
    document: dict[str, Any] = json.loads(text)
    return document


def rgw_user(rgw: CephRgw, uid: str) -> tuple[str, str]:
    """A real RGW user made with radosgw-admin: (access key, secret key)."""
    admin = require_tool("radosgw-admin")
    made = subprocess.run(
        [admin, "-c", str(rgw.directory / "ceph.conf"), "user", "create", f"--uid={uid}", f"--display-name={uid}"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    key = json.loads(made.stdout)["keys"][0]
    return key["access_key"], key["secret_key"]


def client_for(rgw: CephRgw, keys: tuple[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=rgw.endpoint, region_name="us-east-1", aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 1}),
    )


def denied(call: Any, **kwargs: Any) -> str:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    code: str = caught.value.response["Error"]["Code"]
    return code


@pytest.fixture(scope="module")
def policed(ceph_rgw: CephRgw) -> dict[str, Any]:
    """A new Object Lock bucket owned by the admin user, with the policy naming two new users."""
    suffix = uuid.uuid4().hex[:8]
    station_uid, auditor_uid = f"station-{suffix}", f"auditor-{suffix}"
    station, auditor = rgw_user(ceph_rgw, station_uid), rgw_user(ceph_rgw, auditor_uid)
    owner = admin_client(ceph_rgw)
    bucket = f"custody-lp-{suffix}"
    owner.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    owner.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}},
    )
    policy = render(bucket, f"arn:aws:iam:::user/{station_uid}", f"arn:aws:iam:::user/{auditor_uid}")
    owner.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(owner.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Sid"] == "StationPutsAndLocks"
    return {"bucket": bucket, "owner": owner, "station": client_for(ceph_rgw, station), "station_keys": station,
            "auditor": client_for(ceph_rgw, auditor)}


def test_station_puts_and_locks_but_is_refused_deletion_shortening_and_governance_bypass(policed: dict[str, Any]) -> None:
    bucket, station, owner = policed["bucket"], policed["station"], policed["owner"]
    now = datetime.now(timezone.utc)
    put = station.put_object(Bucket=bucket, Key="evidence/a", Body=b"footage")
    version = put["VersionId"]
    held = station.put_object(Bucket=bucket, Key="evidence/g", Body=b"governed", ObjectLockMode="GOVERNANCE",
                              ObjectLockRetainUntilDate=now + timedelta(hours=2))
    station.put_object_legal_hold(Bucket=bucket, Key="evidence/a", VersionId=version, LegalHold={"Status": "ON"})
    station.put_object_legal_hold(Bucket=bucket, Key="evidence/a", VersionId=version, LegalHold={"Status": "OFF"})
    longer = now + timedelta(days=3)
    station.put_object_retention(Bucket=bucket, Key="evidence/a", VersionId=version,
                                 Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    retention = station.get_object_retention(Bucket=bucket, Key="evidence/a", VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE" and retention["RetainUntilDate"] >= longer - timedelta(seconds=1)
    assert station.get_object(Bucket=bucket, Key="evidence/a")["Body"].read() == b"footage"

    assert denied(station.delete_object, Bucket=bucket, Key="evidence/a") == "AccessDenied"
    assert denied(station.delete_object, Bucket=bucket, Key="evidence/a", VersionId=version) == "AccessDenied"
    assert denied(station.put_object_retention, Bucket=bucket, Key="evidence/a", VersionId=version,
                  Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + timedelta(days=2)}) == "AccessDenied"
    shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": now + timedelta(minutes=1)}
    assert denied(station.put_object_retention, Bucket=bucket, Key="evidence/g", VersionId=held["VersionId"],
                  Retention=shorter, BypassGovernanceRetention=True) == "AccessDenied"
    assert denied(station.delete_object, Bucket=bucket, Key="evidence/g", VersionId=held["VersionId"],
                  BypassGovernanceRetention=True) == "AccessDenied"
    assert denied(station.put_bucket_policy, Bucket=bucket, Policy="{}") == "AccessDenied"
    assert denied(station.put_object_lock_configuration, Bucket=bucket,
                  ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}) == "AccessDenied"
    versions = owner.list_object_versions(Bucket=bucket, Prefix="evidence/")
    assert sorted(v["Key"] for v in versions.get("Versions", [])) == ["evidence/a", "evidence/g"]
    assert versions.get("DeleteMarkers", []) == []
    # the same unversioned delete is the owner's to make (a delete marker): the policy, not the lock, refused the station
    marker = owner.delete_object(Bucket=bucket, Key="evidence/a")
    assert marker.get("DeleteMarker") is True


def test_auditor_can_only_read(policed: dict[str, Any]) -> None:
    bucket, station, auditor = policed["bucket"], policed["station"], policed["auditor"]
    put = station.put_object(Bucket=bucket, Key="evidence/r", Body=b"read me")
    assert auditor.get_object(Bucket=bucket, Key="evidence/r", VersionId=put["VersionId"])["Body"].read() == b"read me"
    assert auditor.get_object_retention(Bucket=bucket, Key="evidence/r", VersionId=put["VersionId"])["Retention"]["Mode"] == "COMPLIANCE"
    assert "evidence/r" in [o["Key"] for o in auditor.list_objects_v2(Bucket=bucket, Prefix="evidence/")["Contents"]]
    assert denied(auditor.put_object, Bucket=bucket, Key="evidence/x", Body=b"x") == "AccessDenied"
    assert denied(auditor.put_object_legal_hold, Bucket=bucket, Key="evidence/r", VersionId=put["VersionId"],
                  LegalHold={"Status": "ON"}) == "AccessDenied"
    assert denied(auditor.put_object_retention, Bucket=bucket, Key="evidence/r", VersionId=put["VersionId"],
                  Retention={"Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(timezone.utc) + timedelta(days=9)}) == "AccessDenied"
    assert denied(auditor.delete_object, Bucket=bucket, Key="evidence/r") == "AccessDenied"
    assert denied(auditor.delete_object, Bucket=bucket, Key="evidence/r", VersionId=put["VersionId"]) == "AccessDenied"


def test_custody_ingests_and_holds_with_the_station_users_credentials(
    policed: dict[str, Any], ceph_rgw: CephRgw, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_credentials(monkeypatch, *policed["station_keys"])
    url = f"s3://{policed['bucket']}/station?endpoint_url={ceph_rgw.endpoint}&region=us-east-1"
    custody = Custody(tmp_path / "home", {"CUSTODY_HOME": str(tmp_path / "home"), "CUSTODY_ACTOR": "dock-3",
                                          "CUSTODY_DB": "", "CUSTODY_STORE": url})
    assert custody("init").exit_code == 0
    (tmp_path / "clip.mp4").write_bytes(b"station footage")
    [record] = custody.json("ingest", str(tmp_path / "clip.mp4"))
    assert record["status"] == "recorded"
    held = custody.json("hold", "place", "SAO-1", "--authority", "court", "--reason", "review", record["blake3"][:12])
    assert held["active"] is True
    stored = policed["auditor"].get_object_legal_hold(Bucket=policed["bucket"], Key=f"station/evidence/{record['blake3']}")
    assert stored["LegalHold"]["Status"] == "ON"
    assert custody.json("ledger", "verify")["ok"] is True


def test_terraform_renders_the_same_bucket_policy_the_rgw_tests_apply(tmp_path: Path) -> None:
    terraform = require_tool("terraform")
    module = tmp_path / "policies"
    shutil.copytree(TERRAFORM_POLICIES, module)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "TF_IN_AUTOMATION": "1",
           "TF_CLI_CONFIG_FILE": str(tmp_path / "none.tfrc")}
    (tmp_path / "none.tfrc").write_text("")
    values = {"bucket": "city-bwc-evidence", "station_principal": "arn:aws:iam::123456789012:role/city-bwc-evidence-station",
              "auditor_principal": "arn:aws:iam::123456789012:role/city-bwc-evidence-auditor"}
    subprocess.run([terraform, "init", "-input=false", "-no-color"], cwd=module, env=env, check=True, capture_output=True, timeout=120)
    variables = [f"-var={name}={value}" for name, value in values.items()]
    subprocess.run([terraform, "apply", "-input=false", "-auto-approve", "-no-color", *variables], cwd=module, env=env,
                   check=True, capture_output=True, timeout=120)
    output = subprocess.run([terraform, "output", "-raw", "bucket_policy"], cwd=module, env=env, check=True,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(output.stdout) == render(values["bucket"], values["station_principal"], values["auditor_principal"])
    root = (REPO / "infra" / "terraform" / "main.tf").read_text()
    assert 'source            = "./policies"' in root and "policy     = module.policies.bucket_policy" in root
    assert 'mode = "COMPLIANCE"' in root and 'status = "Enabled"' in root and "object_lock_enabled = true" in root

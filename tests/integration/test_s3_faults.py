"""S3Store when things go wrong, against a real Ceph RGW: corrupted or changing bytes, an
interrupted upload, a bucket without Object Lock, bad names, bad credentials, an unreachable
endpoint, a wrong local clock, a weaker lock than asked and a gateway that dies mid-upload.
What is left on the server is always checked with an independent boto3 client."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from storage.base import ObjectInfo, Retention
from storage.errors import IntegrityRejected, StorageUnavailable, StoreMisconfigured
from custody.evidence.hashing import hash_stream
from storage.s3 import S3Store, UploadPlan, confirm_stored, make_client

pytestmark = pytest.mark.integration

MiB = 1 << 20
PART = 5 * MiB
THRESHOLD = 6 * MiB
CephRgw = Any


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _store(url: str, **options: Any) -> S3Store:
    options.setdefault("multipart_threshold", THRESHOLD)
    options.setdefault("part_size", PART)
    return S3Store.from_url(url, **options)


def _nothing_left(s3_admin: Any, store: S3Store, key: str) -> None:
    """No version, no delete marker and no unfinished multipart upload under ``key``."""
    full = store.prefix + key
    listing = s3_admin.list_object_versions(Bucket=store.bucket, Prefix=full)
    assert [v for v in listing.get("Versions", []) if v["Key"] == full] == []
    assert [m for m in listing.get("DeleteMarkers", []) if m["Key"] == full] == []
    uploads = s3_admin.list_multipart_uploads(Bucket=store.bucket, Prefix=full).get("Uploads", [])
    assert [u for u in uploads if u["Key"] == full] == []


def _server_date(s3_admin: Any, bucket: str) -> datetime:
    header = s3_admin.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]["date"]
    return parsedate_to_datetime(header).astimezone(timezone.utc)


def _retention(store: S3Store, seconds: float = 600) -> Retention:
    return Retention("COMPLIANCE", store.now() + timedelta(seconds=seconds))


def _planned(data: bytes, store: S3Store) -> UploadPlan:
    """The upload plan of ``data`` as an ingest makes it: fed by the hash pass's sink."""
    plan = store.plan_upload(len(data))
    assert plan is not None
    hash_stream(io.BytesIO(data), sink=plan.write)
    return plan


@pytest.mark.parametrize("planned", [False, True], ids=["parts-hashed-while-sent", "upload-plan"])
def test_a_part_corrupted_in_transit_is_refused_by_the_server_and_nothing_is_completed(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, planned: bool
) -> None:
    client = make_client(rgw_credentials.endpoint, "us-east-1")
    flipped: list[str] = []

    def flip_a_byte_of_part_2(request: Any, **_: Any) -> None:
        """After signing, on the way to the server."""
        if "partNumber=2" in request.url and not flipped:
            body = bytearray(request.body if isinstance(request.body, bytes) else request.body.read())
            body[1000] ^= 0xFF
            request.body = bytes(body)
            flipped.append(request.url)

    client.meta.events.register_first("before-send.s3.UploadPart", flip_a_byte_of_part_2)
    store = _store(rgw_url, client=client)
    data = os.urandom(3 * PART + 1)
    plan = _planned(data, store) if planned else None
    with pytest.raises(IntegrityRejected) as rejected:
        store.put("corrupt", io.BytesIO(data), len(data), sha256=_sha(data), retention=_retention(store), plan=plan)
    assert flipped, "the fault was never injected"
    cause = rejected.value.__cause__
    assert isinstance(cause, ClientError)
    # the signed payload SHA-256 catches it; without a plan Content-MD5 would too
    assert cause.response["Error"]["Code"] in (
        {"XAmzContentSHA256Mismatch"} if planned else {"XAmzContentSHA256Mismatch", "BadDigest"}
    )
    assert "corrupt" in str(rejected.value) and "nothing was stored" in str(rejected.value)
    _nothing_left(s3_admin, store, "corrupt")


def test_a_file_changed_after_its_hash_pass_is_refused_part_by_part_by_the_server(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, tmp_path: Path
) -> None:
    """The plan's digests tie the upload to the hash pass: bytes that differ from the ones
    hashed are refused by the server, though the client hashes nothing during the upload."""
    store = _store(rgw_url, max_workers=1)
    original = os.urandom(4 * PART + 3)
    plan = _planned(original, store)
    footage = tmp_path / "clip.mp4"
    footage.write_bytes(original)
    with footage.open("r+b") as handle:  # same size, one byte of part 3 differs
        handle.seek(2 * PART + 17)
        handle.write(bytes([original[2 * PART + 17] ^ 1]))
    hashed: list[int] = []
    with open(footage, "rb", buffering=0) as source, pytest.raises(IntegrityRejected) as rejected:
        store.put("changed", source, len(original), sha256=_sha(original), retention=_retention(store),
                  plan=plan, progress=hashed.append)
    cause = rejected.value.__cause__
    assert isinstance(cause, ClientError) and cause.response["Error"]["Code"] == "XAmzContentSHA256Mismatch"
    assert sum(hashed) <= 2 * PART, "no part after the refused part 3 was acknowledged"
    _nothing_left(s3_admin, store, "changed")


def test_a_plan_for_other_bytes_than_declared_is_refused_before_anything_is_sent(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url)
    data = os.urandom(2 * PART)
    plan = _planned(data[:-1], store)
    with pytest.raises(IntegrityRejected, match="upload plan"):
        store.put("unplanned", io.BytesIO(data), len(data), sha256=_sha(data), retention=_retention(store), plan=plan)
    _nothing_left(s3_admin, store, "unplanned")


def _streaming_store(url: str, **options: Any) -> S3Store:
    """Objects above 1 MiB and up to 64 MiB go up in one streamed PutObject."""
    return _store(url, multipart_threshold=64 * MiB, in_memory_limit=MiB, **options)


def test_a_streamed_object_that_does_not_have_the_declared_sha256_is_refused_by_the_server(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _streaming_store(rgw_url)
    original = os.urandom(3 * MiB)
    changed = bytearray(original)
    changed[2 * MiB] ^= 1
    with pytest.raises(IntegrityRejected) as rejected:
        store.put("streamed", io.BytesIO(bytes(changed)), len(original), sha256=_sha(original),
                  retention=_retention(store))
    cause = rejected.value.__cause__
    assert isinstance(cause, ClientError) and cause.response["Error"]["Code"] == "XAmzContentSHA256Mismatch"
    _nothing_left(s3_admin, store, "streamed")


@pytest.mark.parametrize("change", ["shorter", "longer"])
def test_a_streamed_source_of_another_size_stores_nothing(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, change: str
) -> None:
    store = _streaming_store(rgw_url)
    data = os.urandom(3 * MiB)
    source = data[:-5] if change == "shorter" else data + b"more"
    with pytest.raises(IntegrityRejected, match="has only" if change == "shorter" else "has more than"):
        store.put("sized", io.BytesIO(source), len(data), sha256=_sha(data), retention=_retention(store))
    _nothing_left(s3_admin, store, "sized")


def test_a_source_that_changes_during_a_multipart_upload_is_aborted_before_completion(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url)
    original = os.urandom(3 * PART)
    changed = bytearray(original)
    changed[2 * PART + 17] ^= 1
    with pytest.raises(IntegrityRejected) as rejected:
        store.put(
            "changing", io.BytesIO(bytes(changed)), len(original), sha256=_sha(original),
            retention=_retention(store),
        )
    assert _sha(original) in str(rejected.value) and "aborted" in str(rejected.value)
    _nothing_left(s3_admin, store, "changing")


def test_a_small_object_that_does_not_match_its_digest_is_never_sent(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    client = make_client(rgw_credentials.endpoint, "us-east-1")
    sent: list[str] = []
    client.meta.events.register("before-sign.s3.PutObject", lambda request, **_: sent.append(request.url))
    store = _store(rgw_url, client=client)
    data = b"frame" * 1000
    with pytest.raises(IntegrityRejected):
        store.put("tiny", io.BytesIO(data[:-1] + b"X"), len(data), sha256=_sha(data), retention=_retention(store))
    assert sent == []
    _nothing_left(s3_admin, store, "tiny")


@pytest.mark.parametrize("streamed", [False, True], ids=["multipart", "one-put-object"])
def test_keyboard_interrupt_during_an_upload_stores_nothing(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, streamed: bool
) -> None:
    store = _streaming_store(rgw_url) if streamed else _store(rgw_url, max_workers=2)
    data = os.urandom(4 * PART)

    def interrupt(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.put("interrupted", io.BytesIO(data), len(data), sha256=_sha(data),
                  retention=_retention(store), progress=interrupt)
    _nothing_left(s3_admin, store, "interrupted")


def test_a_bucket_without_object_lock_is_refused_with_how_to_fix_it(
    rgw_credentials: CephRgw, s3_admin: Any
) -> None:
    bucket = f"custody-nolock-{uuid.uuid4().hex[:8]}"
    s3_admin.create_bucket(Bucket=bucket)
    s3_admin.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = _store(f"s3://{bucket}?endpoint_url={rgw_credentials.endpoint}")
    for create in (False, True):
        with pytest.raises(StoreMisconfigured) as refused:
            store.ensure_bucket(create=create)
        message = str(refused.value)
        assert f"bucket {bucket} at {rgw_credentials.endpoint} does not have S3 Object Lock" in message
        assert "Create a new bucket with Object Lock enabled" in message
        assert "--object-lock-enabled-for-bucket" in message
    with pytest.raises(StoreMisconfigured):
        store.put("x", io.BytesIO(b"x"), 1, sha256=_sha(b"x"),
                  retention=Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(minutes=5)))
    assert s3_admin.list_object_versions(Bucket=bucket).get("Versions", []) == []
    with pytest.raises(ClientError):
        s3_admin.get_object_lock_configuration(Bucket=bucket)


def test_an_unknown_bucket_is_reported_as_unavailable_with_its_name_and_endpoint(
    rgw_credentials: CephRgw,
) -> None:
    bucket = f"custody-missing-{uuid.uuid4().hex[:8]}"
    store = _store(f"s3://{bucket}/evidence?endpoint_url={rgw_credentials.endpoint}")
    with pytest.raises(StorageUnavailable) as missing:
        store.ensure_bucket()
    message = str(missing.value)
    assert f"bucket {bucket} does not exist at {rgw_credentials.endpoint}" in message
    assert "Object Lock" in message


def test_wrong_credentials_are_reported_without_revealing_any_secret(
    rgw_credentials: CephRgw, rgw_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrongsecret" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    store = _store(rgw_url)
    with pytest.raises(StorageUnavailable) as rejected:
        store.ensure_bucket()
    message = str(rejected.value)
    assert f"the S3 endpoint {rgw_credentials.endpoint} rejected the credentials" in message
    assert "SignatureDoesNotMatch" in message and store.bucket in message
    assert "AWS_SECRET_ACCESS_KEY" in message
    for text in (message, store.describe(), repr(store), repr(rejected.value)):
        assert wrong not in text and rgw_credentials.secret_key not in text
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "NOSUCHACCESSKEY")
    with pytest.raises(StorageUnavailable, match="InvalidAccessKeyId"):
        _store(rgw_url).put("k", io.BytesIO(b"k"), 1, sha256=_sha(b"k"),
                            retention=Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(minutes=1)))


def test_an_unreachable_endpoint_is_reported_quickly_with_its_address(rgw_credentials: CephRgw) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{closed}"
    store = _store(f"s3://evidence?endpoint_url={endpoint}", max_attempts=2, connect_timeout=1, read_timeout=2)
    began = time.monotonic()
    with pytest.raises(StorageUnavailable) as unreachable:
        store.ensure_bucket()
    assert time.monotonic() - began < 10
    message = str(unreachable.value)
    assert f"cannot reach the S3 endpoint {endpoint} (bucket evidence)" in message
    assert "EndpointConnectionError" in message
    with pytest.raises(StorageUnavailable, match="cannot reach"):
        store.now()


def test_the_store_clock_is_the_servers_even_when_the_local_clock_is_days_off(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    skew = timedelta(days=-2)
    store = _store(rgw_url, clock=lambda: datetime.now(timezone.utc) + skew)
    server = _server_date(s3_admin, store.bucket)
    assert abs((store.now() - server).total_seconds()) <= 2
    probes = store.lock_self_test()
    assert all(p.refused for p in probes), probes
    server = _server_date(s3_admin, store.bucket)
    canaries = s3_admin.list_object_versions(Bucket=store.bucket, Prefix=store.prefix + "canary/")["Versions"]
    assert len(canaries) == 3
    for canary in canaries:
        until = s3_admin.get_object_retention(
            Bucket=store.bucket, Key=canary["Key"], VersionId=canary["VersionId"]
        )["Retention"]["RetainUntilDate"]
        assert abs((until - server).total_seconds() - store.canary_seconds) <= 5


def test_the_local_clock_is_used_only_when_the_server_sends_no_date(
    rgw_credentials: CephRgw, rgw_url: str
) -> None:
    client = make_client(rgw_credentials.endpoint, "us-east-1")

    def drop_date(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ResponseMetadata"]["HTTPHeaders"].pop("date", None)

    client.meta.events.register("after-call.s3.HeadBucket", drop_date)
    local = datetime(2031, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    store = _store(rgw_url, client=client, clock=lambda: local)
    assert store.now() == local


def test_a_lock_weaker_than_asked_is_detected_by_the_post_put_confirmation(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    plain = f"custody-plain-{uuid.uuid4().hex[:8]}"
    s3_admin.create_bucket(Bucket=plain)
    s3_admin.put_bucket_versioning(Bucket=plain, VersioningConfiguration={"Status": "Enabled"})
    s3_admin.put_object(Bucket=plain, Key="unlocked", Body=b"evidence", Metadata={"sha256": _sha(b"evidence")})
    unlocked = _store(f"s3://{plain}?endpoint_url={rgw_credentials.endpoint}").stat("unlocked")
    assert unlocked.retention is None and unlocked.legal_hold is False
    asked = Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(days=1))
    with pytest.raises(StoreMisconfigured, match="no retention at all.*legal hold is not on"):
        confirm_stored(unlocked, retention=asked, legal_hold=True, size=8, sha256=_sha(b"evidence"))

    store = _store(rgw_url)
    short = store.now() + timedelta(minutes=2)
    info = store.put("short", io.BytesIO(b"evidence"), 8, sha256=_sha(b"evidence"),
                     retention=Retention("COMPLIANCE", short))
    confirm_stored(info, retention=Retention("COMPLIANCE", short), legal_hold=False, size=8)
    with pytest.raises(StoreMisconfigured, match="earlier than"):
        confirm_stored(info, retention=Retention("COMPLIANCE", short + timedelta(days=1)), legal_hold=False)
    with pytest.raises(StoreMisconfigured, match="mode is COMPLIANCE, not GOVERNANCE"):
        confirm_stored(info, retention=Retention("GOVERNANCE", short), legal_hold=False)
    with pytest.raises(StoreMisconfigured, match="no version id"):
        confirm_stored(
            ObjectInfo(info.key, "", info.size, info.sha256, info.retention, False),
            retention=Retention("COMPLIANCE", short), legal_hold=False,
        )


def test_a_gateway_that_dies_mid_upload_leaves_no_object_and_the_same_put_then_succeeds(
    private_rgw: CephRgw,
) -> None:
    admin = _private_admin(private_rgw)
    url = f"s3://crash-{uuid.uuid4().hex[:8]}?endpoint_url={private_rgw.endpoint}&region=us-east-1"
    store = _store(url, max_workers=2, max_attempts=2, connect_timeout=1, read_timeout=5)
    store.ensure_bucket(create=True, default_retention_days=1)
    data = os.urandom(8 * PART)
    retention = _retention(store, 3600)
    killed: list[bool] = []

    def kill_after_the_first_part(_: int) -> None:
        if not killed:
            private_rgw.kill_gateway()
            killed.append(True)

    with pytest.raises(StorageUnavailable) as down:
        store.put("footage.mp4", io.BytesIO(data), len(data), sha256=_sha(data),
                  retention=retention, legal_hold=True, progress=kill_after_the_first_part)
    assert killed
    message = str(down.value)
    assert f"cannot reach the S3 endpoint {private_rgw.endpoint}" in message
    assert "could not be aborted" in message

    private_rgw.start_gateway()
    assert admin.list_object_versions(Bucket=store.bucket).get("Versions", []) == []
    leftovers = admin.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert [u["Key"] for u in leftovers] == ["footage.mp4"]

    info = store.put("footage.mp4", io.BytesIO(data), len(data), sha256=_sha(data),
                     retention=retention, legal_hold=True)
    assert info.size == len(data) and info.legal_hold
    assert admin.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    kept = admin.get_object_retention(Bucket=store.bucket, Key="footage.mp4", VersionId=info.version)
    assert kept["Retention"]["Mode"] == "COMPLIANCE"
    body = admin.get_object(Bucket=store.bucket, Key="footage.mp4", VersionId=info.version)["Body"].read()
    assert _sha(body) == _sha(data)


def test_a_file_that_shrinks_while_it_is_streamed_stores_nothing(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, tmp_path: Path
) -> None:
    store = _streaming_store(rgw_url, max_attempts=2)
    data = os.urandom(3 * PART)
    footage = tmp_path / "clip.mp4"
    footage.write_bytes(data)

    def truncate(_: int) -> None:
        os.truncate(footage, PART + 10)

    with open(footage, "rb", buffering=0) as source, pytest.raises(IntegrityRejected, match="ended after"):
        store.put("shrunk", source, len(data), sha256=_sha(data), retention=_retention(store), progress=truncate)
    _nothing_left(s3_admin, store, "shrunk")


def test_a_gateway_that_dies_during_a_streamed_put_object_leaves_no_object_and_the_put_then_succeeds(
    private_rgw: CephRgw,
) -> None:
    admin = _private_admin(private_rgw)
    url = f"s3://crash-{uuid.uuid4().hex[:8]}?endpoint_url={private_rgw.endpoint}&region=us-east-1"
    store = _streaming_store(url, max_attempts=2, connect_timeout=1, read_timeout=5)
    store.ensure_bucket(create=True, default_retention_days=1)
    data = os.urandom(8 * PART)
    retention = _retention(store, 3600)
    killed: list[bool] = []

    def kill_after_the_first_bytes(_: int) -> None:
        if not killed:
            private_rgw.kill_gateway()
            killed.append(True)

    with pytest.raises(StorageUnavailable) as down:
        store.put("footage.mp4", io.BytesIO(data), len(data), sha256=_sha(data),
                  retention=retention, legal_hold=True, progress=kill_after_the_first_bytes)
    assert killed
    assert f"cannot reach the S3 endpoint {private_rgw.endpoint}" in str(down.value)

    private_rgw.start_gateway()
    assert admin.list_object_versions(Bucket=store.bucket).get("Versions", []) == []
    assert admin.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    info = store.put("footage.mp4", io.BytesIO(data), len(data), sha256=_sha(data),
                     retention=retention, legal_hold=True)
    assert info.size == len(data) and info.legal_hold
    kept = admin.get_object_retention(Bucket=store.bucket, Key="footage.mp4", VersionId=info.version)
    assert kept["Retention"]["Mode"] == "COMPLIANCE"
    body = admin.get_object(Bucket=store.bucket, Key="footage.mp4", VersionId=info.version)["Body"].read()
    assert _sha(body) == _sha(data)


def _private_admin(rgw: CephRgw) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=rgw.endpoint, region_name="us-east-1",
        aws_access_key_id=rgw.access_key, aws_secret_access_key=rgw.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 3}),
    )

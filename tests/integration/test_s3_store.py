"""S3Store against a real Ceph RGW: what gets stored, and how it is locked, as seen by an
independent plain boto3 client (``s3_admin``), never only through the project's own code."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import threading
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from storage.base import Retention
from storage.s3 import S3Store, make_client
pytestmark = pytest.mark.integration

MiB = 1 << 20
TEST_PART_SIZE = 5 * MiB
TEST_MULTIPART_THRESHOLD = 6 * MiB
CephRgw = Any
MotoServer = Any


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _admin_versions(s3_admin: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    listing = s3_admin.list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in listing.get("Versions", []) if v["Key"] == key]


def _assert_locked_as_asked(
    s3_admin: Any, store: S3Store, key: str, version: str, until: datetime, hold: bool
) -> None:
    full = store.prefix + key
    retention = s3_admin.get_object_retention(Bucket=store.bucket, Key=full, VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    assert retention["RetainUntilDate"].astimezone(timezone.utc) >= until.replace(microsecond=0)
    assert retention["RetainUntilDate"].astimezone(timezone.utc) <= until + timedelta(days=1, seconds=2)
    legal = s3_admin.get_object_legal_hold(Bucket=store.bucket, Key=full, VersionId=version)["LegalHold"]
    assert legal["Status"] == ("ON" if hold else "OFF")
    with pytest.raises(ClientError) as refused:
        s3_admin.delete_object(Bucket=store.bucket, Key=full, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert _admin_versions(s3_admin, store.bucket, full)[0]["VersionId"] == version


def _store(url: str, **options: Any) -> S3Store:
    options.setdefault("multipart_threshold", TEST_MULTIPART_THRESHOLD)
    options.setdefault("part_size", TEST_PART_SIZE)
    return S3Store.from_url(url, **options)


def test_small_put_is_locked_held_and_checksummed_as_an_independent_client_sees_it(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url)
    data = os.urandom(200_000)
    until = store.now() + timedelta(hours=2)
    info = store.put(
        "small", io.BytesIO(data), len(data), sha256=_sha(data),
        retention=Retention("COMPLIANCE", until), legal_hold=True, metadata={"blake3": "b3" * 32},
    )
    _assert_locked_as_asked(s3_admin, store, "small", info.version, until, hold=True)
    head = s3_admin.head_object(Bucket=store.bucket, Key=store.prefix + "small", VersionId=info.version)
    assert head["Metadata"] == {"sha256": _sha(data), "blake3": "b3" * 32}
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    body = s3_admin.get_object(Bucket=store.bucket, Key=store.prefix + "small")["Body"].read()
    assert body == data


def test_multipart_put_sends_parts_in_parallel_then_locks_the_completed_object(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    client = make_client(rgw_credentials.endpoint, "us-east-1", max_pool_connections=8)
    lock = threading.Lock()
    active = {"now": 0, "max": 0, "threads": set()}

    def part_started(**_: Any) -> None:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
            active["threads"].add(threading.current_thread().name)

    def part_finished(**_: Any) -> None:
        with lock:
            active["now"] -= 1

    client.meta.events.register("before-sign.s3.UploadPart", part_started)
    client.meta.events.register("after-call.s3.UploadPart", part_finished)
    store = _store(rgw_url, client=client, max_workers=4)
    data = os.urandom(4 * TEST_PART_SIZE + 12345)
    sent: list[int] = []
    until = store.now() + timedelta(hours=3)
    info = store.put(
        "big", io.BytesIO(data), len(data), sha256=_sha(data),
        retention=Retention("COMPLIANCE", until), legal_hold=True, progress=sent.append,
    )
    assert sum(sent) == len(data) and len(sent) == 5
    assert active["max"] >= 2, active
    assert len(active["threads"]) >= 2
    full = store.prefix + "big"
    head = s3_admin.head_object(Bucket=store.bucket, Key=full, VersionId=info.version)
    assert head["ETag"].strip('"').endswith("-5")
    assert head["ContentLength"] == len(data)
    assert head["Metadata"]["sha256"] == _sha(data)
    assert s3_admin.list_multipart_uploads(Bucket=store.bucket, Prefix=full).get("Uploads", []) == []
    _assert_locked_as_asked(s3_admin, store, "big", info.version, until, hold=True)
    with store.open("big") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == _sha(data)
        handle.seek(TEST_PART_SIZE - 10)
        assert handle.read(20) == data[TEST_PART_SIZE - 10 : TEST_PART_SIZE + 10]
        handle.seek(-7, io.SEEK_END)
        assert handle.read() == data[-7:]


def test_multipart_retention_asked_beyond_the_bucket_default_is_applied(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url)
    data = os.urandom(TEST_MULTIPART_THRESHOLD + 1)
    until = store.now() + timedelta(days=30)
    info = store.put("long", io.BytesIO(data), len(data), sha256=_sha(data), retention=Retention("COMPLIANCE", until))
    retention = s3_admin.get_object_retention(Bucket=store.bucket, Key=store.prefix + "long", VersionId=info.version)
    assert abs(retention["Retention"]["RetainUntilDate"] - until).total_seconds() < 1.5
    assert info.retention is not None and info.retention.until >= until.replace(microsecond=0)


class _GeneratedSource(io.RawIOBase):
    """Deterministic pseudo-random bytes produced on demand (never all in memory)."""

    def __init__(self, size: int, seed: int) -> None:
        self._left = size
        self._random = random.Random(seed)

    def readable(self) -> bool:
        return True

    def read(self, count: int = -1) -> bytes:
        count = self._left if count < 0 else min(count, self._left)
        self._left -= count
        return self._random.randbytes(count)


def _generated_sha(size: int, seed: int) -> str:
    source, digest = _GeneratedSource(size, seed), hashlib.sha256()
    while chunk := source.read(MiB):
        digest.update(chunk)
    return digest.hexdigest()


def test_multipart_memory_stays_bounded_whatever_the_object_size(
    rgw_credentials: CephRgw, rgw_url: str
) -> None:
    size = 60 * MiB
    sha = _generated_sha(size, 7)
    store = _store(rgw_url, max_workers=2)
    store.now()  # the client (botocore's service model) is built before memory is traced
    tracemalloc.start()
    try:
        info = store.put(
            "bounded", _GeneratedSource(size, 7), size, sha256=sha,  # type: ignore[arg-type]
            retention=Retention("COMPLIANCE", store.now() + timedelta(minutes=5)),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == size and info.sha256 == sha
    bound = (store.max_workers + 2) * TEST_PART_SIZE
    assert peak < bound + 8 * MiB, f"peak {peak / MiB:.1f} MiB for a {size // MiB} MiB object"


def test_list_yields_each_current_object_once_even_with_older_versions(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url)
    retention = Retention("COMPLIANCE", store.now() + timedelta(minutes=10))
    for name in ("b", "a", "c"):
        store.put(f"l/{name}", io.BytesIO(name.encode()), 1, sha256=_sha(name.encode()), retention=retention)
    newer = s3_admin.put_object(Bucket=store.bucket, Key=store.prefix + "l/b", Body=b"bb")
    listed = list(store.list("l/"))
    assert [o.key for o in listed] == ["l/a", "l/b", "l/c"]
    assert listed[1].version == newer["VersionId"] and listed[1].size == 2


def test_extend_retention_and_legal_hold_reach_the_server(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url)
    info = store.put(
        "x", io.BytesIO(b"x"), 1, sha256=_sha(b"x"),
        retention=Retention("COMPLIANCE", store.now() + timedelta(minutes=10)),
    )
    later = store.now() + timedelta(days=400, seconds=0.4)
    store.extend_retention("x", info.version, later)
    seen = s3_admin.get_object_retention(Bucket=store.bucket, Key=store.prefix + "x", VersionId=info.version)
    assert seen["Retention"]["RetainUntilDate"] == later.replace(microsecond=0) + timedelta(seconds=1)
    store.set_legal_hold("x", info.version, True)
    hold = s3_admin.get_object_legal_hold(Bucket=store.bucket, Key=store.prefix + "x", VersionId=info.version)
    assert hold["LegalHold"]["Status"] == "ON"


def test_lock_self_test_is_refused_on_every_probe_by_rgw(rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any) -> None:
    store = _store(rgw_url)
    probes = store.lock_self_test()
    assert [p.action for p in probes] == ["delete-version", "shorten-retention", "switch-to-governance"]
    assert all(p.refused for p in probes), probes
    assert all("AccessDenied" in p.detail for p in probes), probes
    canaries = s3_admin.list_object_versions(Bucket=store.bucket, Prefix=store.prefix + "canary/")["Versions"]
    assert len(canaries) == 3
    for canary in canaries:
        kept = s3_admin.get_object_retention(Bucket=store.bucket, Key=canary["Key"], VersionId=canary["VersionId"])
        assert kept["Retention"]["Mode"] == "COMPLIANCE"


def test_lock_self_test_catches_a_server_that_does_not_enforce_locks(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    store = S3Store.from_url(f"s3://moto-lock-{int(time.time())}?endpoint_url={moto_server.endpoint}&region=us-east-1")
    store.ensure_bucket(create=True, default_retention_days=1)
    probes = store.lock_self_test()
    assert [p.action for p in probes] == ["delete-version", "shorten-retention", "switch-to-governance"]
    assert not all(p.refused for p in probes), probes
    weak = [p for p in probes if not p.refused]
    assert all("accepted" in p.detail or "changed" in p.detail or "gone" in p.detail for p in weak), weak


def test_ensure_bucket_creates_an_object_lock_bucket_with_default_compliance_retention(
    rgw_credentials: CephRgw, s3_admin: Any
) -> None:
    bucket = f"custody-new-{int(time.time() * 1000)}"
    store = S3Store.from_url(f"s3://{bucket}?endpoint_url={rgw_credentials.endpoint}")
    store.ensure_bucket(create=True, default_retention_days=7)
    lock = s3_admin.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 7}
    assert s3_admin.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    store.ensure_bucket()


# ---- how the bytes reach the server ----------------------------------------------------------


def _requests_seen(client: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(operation, URL, headers) of every request ``client`` sends, as it leaves."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()}
        seen.append((event_name.rsplit(".", 1)[-1], request.url, headers))

    client.meta.events.register("before-send.s3", record)
    return seen


def test_the_server_validates_payload_hashes_and_finding_out_leaves_nothing(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url)
    assert store.validates_payload_sha256() is True
    canaries = store.prefix + "canary/"
    assert s3_admin.list_multipart_uploads(Bucket=store.bucket, Prefix=canaries).get("Uploads", []) == []
    assert s3_admin.list_object_versions(Bucket=store.bucket, Prefix=canaries).get("Versions", []) == []


@pytest.mark.parametrize("flexible", [True, False], ids=["flexible-checksums", "no-flexible-checksums"])
def test_an_object_up_to_the_threshold_goes_up_in_one_put_object_signed_with_its_sha256(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, tmp_path: Any, flexible: bool
) -> None:
    client = make_client(rgw_credentials.endpoint, "us-east-1")
    seen = _requests_seen(client)
    store = _store(rgw_url, client=client, multipart_threshold=64 * MiB, in_memory_limit=MiB,
                   flexible_checksums=flexible)
    data = os.urandom(3 * TEST_PART_SIZE + 5)
    footage = tmp_path / "clip.mp4"
    footage.write_bytes(data)
    until = store.now() + timedelta(hours=2)
    sent: list[int] = []
    with open(footage, "rb", buffering=0) as source:
        assert store.plan_upload(len(data)) is None
        info = store.put("whole", source, len(data), sha256=_sha(data), retention=Retention("COMPLIANCE", until),
                         legal_hold=True, metadata={"blake3": "b3" * 32}, progress=sent.append)
    assert sum(sent) == len(data) and len(sent) >= 2
    uploads = [(op, headers) for op, url, headers in seen if "/whole" in url and op != "HeadObject"]
    headers = uploads[0][1]
    assert headers["x-amz-content-sha256"] == _sha(data)  # the server checks the whole object
    if flexible:  # lock headers and checksum go with the PutObject; the final stat (HeadObject) confirms them
        assert [op for op, _ in uploads] == ["PutObject"]
        assert [op for op, url, _ in seen if "/whole" in url][-1] == "HeadObject"
        assert headers["x-amz-object-lock-mode"] == "COMPLIANCE" and headers["x-amz-object-lock-legal-hold"] == "ON"
        assert headers["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    else:  # no checksum header, so no lock headers: the lock is applied after the PutObject
        assert "x-amz-object-lock-mode" not in headers and "x-amz-checksum-sha256" not in headers
        assert [op for op, _ in uploads][:1] == ["PutObject"]
        assert "PutObjectLegalHold" in {op for op, _ in uploads}  # the bucket default covers the date
    _assert_locked_as_asked(s3_admin, store, "whole", info.version, until, hold=True)
    head = s3_admin.head_object(Bucket=store.bucket, Key=store.prefix + "whole", VersionId=info.version)
    assert head["Metadata"] == {"sha256": _sha(data), "blake3": "b3" * 32}
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    body = s3_admin.get_object(Bucket=store.bucket, Key=store.prefix + "whole")["Body"].read()
    assert body == data


def test_with_an_upload_plan_every_part_is_signed_with_the_digest_of_the_hash_pass(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, tmp_path: Any
) -> None:
    from custody.evidence.hashing import hash_stream

    client = make_client(rgw_credentials.endpoint, "us-east-1")
    seen = _requests_seen(client)
    store = _store(rgw_url, client=client)
    data = os.urandom(3 * TEST_PART_SIZE + 12345)
    footage = tmp_path / "clip.mp4"
    footage.write_bytes(data)
    plan = store.plan_upload(len(data))
    assert plan is not None and plan.md5 is None  # the server validates payload hashes
    with open(footage, "rb", buffering=0) as source:
        digests = hash_stream(source, sink=plan.write)
        source.seek(0)
        info = store.put("planned", source, len(data), sha256=digests.sha256,
                         retention=Retention("COMPLIANCE", store.now() + timedelta(hours=1)), plan=plan)
    parts = [data[i : i + TEST_PART_SIZE] for i in range(0, len(data), TEST_PART_SIZE)]
    sent = [headers for op, url, headers in seen if op == "UploadPart" and "/planned" in url]
    assert sorted(h["x-amz-content-sha256"] for h in sent) == sorted(_sha(p) for p in parts)
    assert all("content-md5" not in h for h in sent)
    assert sorted(h["x-amz-checksum-sha256"] for h in sent) == sorted(
        base64.b64encode(hashlib.sha256(p).digest()).decode() for p in parts
    )
    head = s3_admin.head_object(Bucket=store.bucket, Key=store.prefix + "planned", VersionId=info.version)
    assert head["ETag"].strip('"').endswith(f"-{len(parts)}")
    assert head["Metadata"]["sha256"] == _sha(data) == info.sha256
    body = s3_admin.get_object(Bucket=store.bucket, Key=store.prefix + "planned")["Body"].read()
    assert body == data


def test_a_server_that_does_not_validate_payload_hashes_is_sent_content_md5_and_multipart(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto stands in for such a server here (it accepts a part whose payload hash is wrong);
    nothing about locks is concluded from it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    store = S3Store.from_url(
        f"s3://moto-md5-{int(time.time() * 1000)}?endpoint_url={moto_server.endpoint}&region=us-east-1",
        multipart_threshold=64 * MiB, in_memory_limit=MiB,
    )
    store.ensure_bucket(create=True, default_retention_days=1)
    assert store.validates_payload_sha256() is False
    assert store._multipart(3 * MiB), "not streamed in one PutObject to a server that cannot check it"
    plan = store.plan_upload(65 * MiB)
    assert plan is not None and plan.md5 == []


def test_stat_reads_the_lock_from_head_object_and_asks_only_for_what_it_left_out(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url)
    data = os.urandom(10_000)
    until = store.now() + timedelta(hours=3)
    info = store.put("stat-held", io.BytesIO(data), len(data), sha256=_sha(data),
                     retention=Retention("COMPLIANCE", until), legal_hold=True)
    calls: list[str] = []
    store._client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    held = store.stat("stat-held", info.version)
    full = store.prefix + "stat-held"
    independent = s3_admin.get_object_retention(Bucket=store.bucket, Key=full, VersionId=info.version)["Retention"]
    assert held.retention is not None and held.retention.mode == "COMPLIANCE"
    assert held.retention.until == independent["RetainUntilDate"].astimezone(timezone.utc)
    assert held.legal_hold is True
    assert calls == ["HeadObject"], "the server's HeadObject carries both retention and hold"
    store.set_legal_hold("stat-held", info.version, False)
    calls.clear()
    released = store.stat("stat-held", info.version)
    assert released.legal_hold is False
    assert s3_admin.get_object_legal_hold(Bucket=store.bucket, Key=full, VersionId=info.version)["LegalHold"]["Status"] == "OFF"
    assert calls[0] == "HeadObject" and len(calls) <= 2


def test_a_self_test_deletes_the_expired_canaries_of_earlier_ones_and_nothing_else(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any
) -> None:
    store = _store(rgw_url, canary_seconds=10)
    data = os.urandom(1000)
    kept = store.put("canary/not-a-canary", io.BytesIO(data), len(data), sha256=_sha(data),
                     retention=Retention("COMPLIANCE", store.now() + timedelta(seconds=5)))  # expired well before the second self-test, 12 s on
    first = store.lock_self_test()
    assert all(p.refused for p in first)
    prefix = store.prefix + "canary/"

    def canaries() -> set[str]:
        listing = s3_admin.list_object_versions(Bucket=store.bucket, Prefix=prefix)
        return {v["Key"] for v in listing.get("Versions", []) if not v["Key"].endswith("not-a-canary")}

    earlier = canaries()
    assert len(earlier) == 3
    time.sleep(12)  # the first canaries' retention (10 s) has passed
    second = store.lock_self_test()
    assert all(p.refused for p in second), "a sweep must not weaken the self-test"
    now = canaries()
    assert len(now) == 3 and not (now & earlier), "the expired canaries are gone, the new ones stay"
    versions = s3_admin.list_object_versions(Bucket=store.bucket, Prefix=store.prefix + "canary/not-a-canary")
    assert [v["VersionId"] for v in versions.get("Versions", [])] == [kept.version], "not ours: left alone"

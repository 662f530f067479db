"""Ingest into S3 on a real Ceph RGW: the upload is tied to the hash pass.

The file is read twice (once to hash it, once to send it). Whatever the store sends is checked
by the server against digests taken from the first read: the whole file's SHA-256 for one
PutObject, the upload plan's per-part SHA-256s for a multipart upload. A file whose bytes change
between the two reads is therefore refused by the server itself, and nothing is recorded. What
the server holds is checked with an independent plain boto3 client (``s3_admin``)."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import blake3
import pytest

from custody.evidence.ingest import Ingestor
from custody.ledger.database import Ledger
from storage.s3 import S3Store, make_client

pytestmark = pytest.mark.integration

MiB = 1 << 20
PART = 5 * MiB
CephRgw = Any


def _ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create()
    return ledger


def _store(url: str, client: Any, streamed: bool) -> S3Store:
    if streamed:  # one PutObject, streamed from the file
        return S3Store.from_url(url, client=client, multipart_threshold=64 * MiB, in_memory_limit=MiB)
    return S3Store.from_url(url, client=client, multipart_threshold=6 * MiB, part_size=PART, max_workers=1)


def _nothing_stored(s3_admin: Any, store: S3Store) -> None:
    prefix = store.prefix + "evidence/"
    assert s3_admin.list_object_versions(Bucket=store.bucket, Prefix=prefix).get("Versions", []) == []
    assert s3_admin.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix).get("Uploads", []) == []


@pytest.mark.parametrize("streamed", [False, True], ids=["multipart-with-plan", "one-put-object"])
def test_an_ingest_sends_digests_from_its_hash_pass_and_records_what_the_server_accepted(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, tmp_path: Path, streamed: bool
) -> None:
    client = make_client(rgw_credentials.endpoint, "us-east-1")
    signed: list[tuple[str, str]] = []  # (part number or "whole", x-amz-content-sha256)

    def record(request: Any, **_: Any) -> None:
        if "/evidence/" in request.url and request.method == "PUT":
            number = parse_qs(urlsplit(request.url).query).get("partNumber", ["whole"])[0]
            signed.append((number, request.headers["X-Amz-Content-SHA256"].decode()))

    client.meta.events.register("before-send.s3", record)
    store = _store(rgw_url, client, streamed)
    footage = tmp_path / "BWC-0001.mp4"
    data = os.urandom(3 * PART + 4321)
    footage.write_bytes(data)
    ledger = _ledger(tmp_path)

    [result] = Ingestor(ledger, store, actor="tech-0412", retention=timedelta(minutes=10)).run([str(footage)])
    assert result.status == "recorded", result.reason
    sha = hashlib.sha256(data).hexdigest()
    if streamed:
        assert signed == [("whole", sha)]
    else:
        parts = [data[i : i + PART] for i in range(0, len(data), PART)]
        assert sorted(signed) == sorted((str(n), hashlib.sha256(p).hexdigest()) for n, p in enumerate(parts, 1))
    key = store.prefix + f"evidence/{blake3.blake3(data).hexdigest()}"
    head = s3_admin.head_object(Bucket=store.bucket, Key=key)
    assert head["Metadata"] == {"sha256": sha, "blake3": blake3.blake3(data).hexdigest()}
    assert s3_admin.get_object(Bucket=store.bucket, Key=key)["Body"].read() == data
    assert ledger.head()[0] == 1


@pytest.mark.parametrize("streamed", [False, True], ids=["multipart-with-plan", "one-put-object"])
def test_a_file_rewritten_between_the_hash_pass_and_the_upload_is_refused_by_the_server(
    rgw_credentials: CephRgw, rgw_url: str, s3_admin: Any, tmp_path: Path, streamed: bool
) -> None:
    client = make_client(rgw_credentials.endpoint, "us-east-1")
    footage = tmp_path / "BWC-0002.mp4"
    data = os.urandom(3 * PART + 4321)
    footage.write_bytes(data)
    rewritten: list[str] = []

    def rewrite_the_last_part(request: Any, **_: Any) -> None:
        """Just before the first upload request leaves: same size, one byte of the last part
        differs. The bytes of that part have not been read for sending yet."""
        if "/evidence/" in request.url and request.method == "PUT" and not rewritten:
            with footage.open("r+b") as handle:
                handle.seek(len(data) - 100)
                handle.write(bytes([data[-100] ^ 1]))
            rewritten.append(request.url)

    client.meta.events.register("before-send.s3", rewrite_the_last_part)
    store = _store(rgw_url, client, streamed)
    ledger = _ledger(tmp_path)

    [result] = Ingestor(ledger, store, actor="tech-0412", retention=timedelta(minutes=10)).run([str(footage)])
    assert rewritten, "the file was never rewritten"
    assert result.status == "failed"
    assert "the file changed between reads; nothing recorded" in (result.reason or "")
    assert "XAmzContentSHA256Mismatch" in (result.reason or ""), "refused by the server, not by this client"
    assert ledger.head()[0] == 0
    _nothing_stored(s3_admin, store)

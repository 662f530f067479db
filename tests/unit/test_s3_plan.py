"""Upload plans, the payload-hash probe and signing with a known payload SHA-256, without a
server: answers come from botocore's own ``Stubber``, or a request is captured just before it
would be sent. What a real server does with these requests is tested in tests/integration."""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import use_credentials
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from custody.evidence.hashing import hash_stream
from storage.errors import IntegrityRejected, StorageUnavailable
from storage.s3 import S3Store, UploadPlan, make_client

MiB = 1 << 20


@pytest.fixture(autouse=True)
def isolated_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    use_credentials(monkeypatch, "AKIDUNITTEST", "unit-test-secret")


def _parts(data: bytes, part_size: int) -> list[bytes]:
    return [data[i : i + part_size] for i in range(0, len(data), part_size)] or [b""]


@pytest.mark.parametrize("md5", [False, True])
def test_a_plan_splits_chunks_of_any_size_at_part_boundaries(md5: bool) -> None:
    part_size = 5 * MiB
    data = random.Random(3).randbytes(3 * part_size + 12345)
    plan = UploadPlan(len(data), part_size, md5=md5)
    chunks = random.Random(4)
    offset = 0
    while offset < len(data):
        step = chunks.choice([1, 4096, 3 * MiB + 7, part_size, 2 * part_size + 1])
        plan.write(memoryview(data)[offset : offset + step])
        offset += step
    plan.finish()
    expected = _parts(data, part_size)
    assert plan.count == len(expected) == 4
    assert plan.sha256 == [hashlib.sha256(p).digest() for p in expected]
    assert plan.md5 == ([hashlib.md5(p).digest() for p in expected] if md5 else None)


def test_a_plan_fed_by_the_hash_pass_holds_the_digests_of_the_bytes_hashed() -> None:
    part_size = 5 * MiB
    data = random.Random(5).randbytes(40 * MiB + 1)  # more than one 16 MiB pipeline chunk
    plan = UploadPlan(len(data), part_size, md5=False)
    digests = hash_stream(io.BytesIO(data), sink=plan.write)
    plan.finish()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert plan.sha256 == [hashlib.sha256(p).digest() for p in _parts(data, part_size)]


@pytest.mark.parametrize("fed", [5 * MiB, 5 * MiB + 2])
def test_a_plan_that_did_not_receive_exactly_its_size_is_refused(fed: int) -> None:
    plan = UploadPlan(5 * MiB + 1, 5 * MiB, md5=False)
    plan.write(b"\0" * fed)
    with pytest.raises(IntegrityRejected, match="upload plan covers"):
        plan.finish()


# ---- signing with a known payload SHA-256 --------------------------------------------------


class _CountingBody(io.BytesIO):
    """A request body that counts how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


class _EmptyRaw:
    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        return iter([b""])


@pytest.fixture
def captured() -> Iterator[tuple[Any, list[Any]]]:
    """A store's client whose requests are captured just before sending and answered 200."""
    client = make_client("http://127.0.0.1:9", "us-east-1", max_attempts=1)
    S3Store("evidence", endpoint_url="http://127.0.0.1:9", client=client)  # installs the signing
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {"ETag": '"e"'}, _EmptyRaw())

    client.meta.events.register("before-send.s3", answer)
    yield client, sent


def test_a_known_payload_sha256_is_signed_without_reading_the_body(captured: tuple[Any, list[Any]]) -> None:
    client, sent = captured
    data = os.urandom(100_000)
    body = _CountingBody(data)
    known = hashlib.sha256(data).hexdigest()
    client.upload_part(Bucket="evidence", Key="k", UploadId="u", PartNumber=1, Body=body,
                       ContentLength=len(data), CustodyPayloadSHA256=known)
    [request] = sent
    assert request.headers["X-Amz-Content-SHA256"] == known.encode()
    assert b"x-amz-content-sha256" in request.headers["Authorization"]
    assert body.bytes_read == 0, "the signer read the body to hash it"
    assert "CustodyPayloadSHA256" not in request.url and b"Custody" not in b"".join(
        k.encode() if isinstance(k, str) else k for k in request.headers.keys()
    )


def test_without_a_known_digest_botocore_still_hashes_the_body_itself(captured: tuple[Any, list[Any]]) -> None:
    client, sent = captured
    data = os.urandom(100_000)
    body = _CountingBody(data)
    client.upload_part(Bucket="evidence", Key="k", UploadId="u", PartNumber=1, Body=body, ContentLength=len(data))
    [request] = sent
    assert request.headers["X-Amz-Content-SHA256"] == hashlib.sha256(data).hexdigest().encode()
    assert body.bytes_read >= len(data)


# ---- the payload-hash probe ----------------------------------------------------------------


@pytest.fixture
def stubbed() -> Iterator[tuple[S3Store, Stubber]]:
    client = make_client("http://127.0.0.1:9", "us-east-1", max_attempts=1)
    stubber = Stubber(client)
    stubber.activate()
    yield S3Store("evidence", "cams", endpoint_url="http://127.0.0.1:9", client=client,
                  multipart_threshold=8 * MiB, part_size=5 * MiB, in_memory_limit=6 * MiB), stubber
    stubber.deactivate()


def _probe_answers(stubber: Stubber, part: str | None) -> None:
    stubber.add_response("create_multipart_upload", {"UploadId": "probe-1"})
    if part is None:
        stubber.add_response("upload_part", {"ETag": '"accepted"'})
    else:
        stubber.add_client_error("upload_part", part, http_status_code=400)
    stubber.add_response("abort_multipart_upload", {})


def test_a_server_that_refuses_a_wrong_payload_hash_validates_them_and_plans_carry_no_md5(
    stubbed: tuple[S3Store, Stubber],
) -> None:
    store, stubber = stubbed
    _probe_answers(stubber, "XAmzContentSHA256Mismatch")
    plan = store.plan_upload(9 * MiB)
    assert plan is not None and plan.md5 is None and plan.part_size == 5 * MiB and plan.count == 2
    assert store.validates_payload_sha256() is True  # asked once: no second probe was answered
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("part", [None, "InvalidRequest"])
def test_a_server_that_accepts_a_wrong_payload_hash_gets_md5s_in_its_plans(
    stubbed: tuple[S3Store, Stubber], part: str | None
) -> None:
    store, stubber = stubbed
    _probe_answers(stubber, part)
    plan = store.plan_upload(9 * MiB)
    assert plan is not None and plan.md5 == []
    stubber.assert_no_pending_responses()


def test_objects_that_go_up_whole_need_no_plan(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    assert store.plan_upload(0) is None
    assert store.plan_upload(6 * MiB) is None  # read into memory: no request at all
    stubber.assert_no_pending_responses()


def test_the_probe_of_a_streamed_size_runs_while_the_caller_hashes(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    _probe_answers(stubber, "XAmzContentSHA256Mismatch")
    assert store.plan_upload(7 * MiB) is None  # one streamed PutObject, if the server validates
    assert store._payload_soon is not None
    assert store._payload_soon.result(timeout=10) is True
    stubber.assert_no_pending_responses()


def test_the_client_is_built_in_the_background_and_a_failure_surfaces_at_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import storage.s3.store

    release = threading.Event()

    def slow_failure(*_: Any, **__: Any) -> Any:
        release.wait(10)
        raise ValueError("no such region")

    monkeypatch.setattr(storage.s3.store, "make_client", slow_failure)
    store = S3Store("evidence", endpoint_url="http://127.0.0.1:9")  # returns without waiting
    release.set()
    with pytest.raises(StorageUnavailable, match="cannot set up an S3 client .*no such region"):
        store.now()

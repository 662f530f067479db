"""S3Store without a server: store URLs, client configuration, and how botocore errors become
``storage.errors`` (answers fed by botocore's own ``Stubber``). Lock semantics are not tested
here: only a real server can show them (tests/integration)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import use_credentials
from botocore.stub import Stubber

from storage.base import ObjectInfo, Retention
from storage.errors import (
    IntegrityRejected,
    ObjectExists,
    ObjectNotFound,
    RetentionViolation,
    StorageError,
    StorageUnavailable,
    StoreMisconfigured,
)
from storage.s3 import S3Store, confirm_stored, make_client, whole_second_ceiling
from storage.url import open_store

SECRET = "s3cr3tVALUEthatMustNeverBePrinted"
SHA_X = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


@pytest.fixture(autouse=True)
def isolated_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    use_credentials(monkeypatch, "AKIDUNITTEST", SECRET)


def _retention(minutes: int = 10) -> Retention:
    return Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(minutes=minutes))


def test_url_names_bucket_prefix_endpoint_and_region() -> None:
    store = S3Store.from_url("s3://evidence/body-cams/2026?endpoint_url=http://127.0.0.1:7480&region=eu-west-1")
    assert (store.bucket, store.prefix, store.endpoint_url, store.region) == (
        "evidence", "body-cams/2026/", "http://127.0.0.1:7480", "eu-west-1",
    )
    assert store.describe() == "s3://evidence/body-cams/2026 at http://127.0.0.1:7480"
    config = store._client.meta.config
    assert config.s3["addressing_style"] == "path"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (config.connect_timeout, config.read_timeout) == (10.0, 30.0)
    assert store._client.meta.region_name == "eu-west-1"


def test_without_an_endpoint_the_aws_endpoint_is_named_and_addressing_is_automatic() -> None:
    store = open_store("s3://evidence?region=eu-west-1")
    assert isinstance(store, S3Store)
    assert store.prefix == ""
    assert store._client.meta.config.s3["addressing_style"] == "auto"
    assert store.describe() == "s3://evidence at https://s3.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    "url",
    [
        f"s3://AKIDUNITTEST:{SECRET}@evidence",
        f"s3://evidence?endpoint_url=http://127.0.0.1:7480&aws_secret_access_key={SECRET}",
        f"s3://evidence?aws_access_key_id=AKID&secret={SECRET}",
        f"s3://evidence?endpoint_url=http://AKID:{SECRET}@127.0.0.1:7480",
        f"s3://evidence?session_token={SECRET}",
    ],
)
def test_credentials_in_the_url_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(StorageError) as refused:
        S3Store.from_url(url)
    assert SECRET not in str(refused.value)
    assert "standard chain" in str(refused.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://evidence?endpoint=http://x", "unknown S3 store URL parameter(s) endpoint"),
        ("s3://evidence?region=a&region=b", "more than once: region"),
        ("s3://evidence?endpoint_url=ftp://127.0.0.1", "http:// or https://"),
        ("s3:///just/a/path", "names no bucket"),
        ("gs://evidence", "starts with s3://"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str, expected: str) -> None:
    with pytest.raises(StorageError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        S3Store.from_url(url)


def test_credentials_from_the_chain_never_appear_in_description_or_repr() -> None:
    store = S3Store.from_url("s3://evidence/p?endpoint_url=http://127.0.0.1:7480")
    for text in (store.describe(), repr(store), str(store.capabilities)):
        assert SECRET not in text and "AKIDUNITTEST" not in text
    assert store.capabilities.worm == "server"


def test_importing_storage_does_not_import_boto3() -> None:
    code = (
        "import sys, storage, storage.url, storage.local;"
        "assert 'boto3' not in sys.modules and 'storage.s3' not in sys.modules, sorted(sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr


def test_parts_smaller_than_s3_allows_are_refused() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        S3Store("evidence", part_size=1 << 20)


def test_part_size_grows_so_that_no_object_needs_more_than_10000_parts() -> None:
    store = S3Store("evidence", part_size=16 << 20)
    assert store._part_size_for(100 << 20) == 16 << 20
    huge = 400 * (1 << 30)
    assert huge / store._part_size_for(huge) <= 10_000


def test_retain_until_dates_round_up_to_whole_seconds() -> None:
    moment = datetime(2030, 1, 1, 12, 0, 0, 1, tzinfo=timezone.utc)
    assert whole_second_ceiling(moment) == datetime(2030, 1, 1, 12, 0, 1, tzinfo=timezone.utc)
    exact = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert whole_second_ceiling(exact) == exact


def test_confirmation_accepts_a_stronger_lock_and_refuses_weaker_ones() -> None:
    until = datetime(2030, 1, 1, tzinfo=timezone.utc)
    info = ObjectInfo("k", "v1", 3, SHA_X, Retention("COMPLIANCE", until + timedelta(days=1)), True)
    confirm_stored(info, retention=Retention("COMPLIANCE", until), legal_hold=True, size=3, sha256=SHA_X)
    with pytest.raises(StoreMisconfigured, match="earlier than"):
        confirm_stored(info, retention=Retention("COMPLIANCE", until + timedelta(days=2)), legal_hold=False)
    with pytest.raises(StoreMisconfigured, match="no retention at all"):
        confirm_stored(ObjectInfo("k", "v1", 3, SHA_X, None, False), retention=Retention("COMPLIANCE", until), legal_hold=False)
    with pytest.raises(StorageError, match="reports 3 bytes .* but 4 were sent"):
        confirm_stored(info, retention=Retention("COMPLIANCE", until), legal_hold=False, size=4)


@pytest.fixture
def stubbed() -> Iterator[tuple[S3Store, Stubber]]:
    client = make_client("http://127.0.0.1:9", "us-east-1", max_attempts=1)
    stubber = Stubber(client)
    stubber.activate()
    yield S3Store("evidence", "cams", endpoint_url="http://127.0.0.1:9", client=client), stubber
    stubber.deactivate()


def _bucket_is_locked(stubber: Stubber) -> None:
    stubber.add_response("get_object_lock_configuration", {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}})
    stubber.add_response("get_bucket_versioning", {"Status": "Enabled"})


def _stat_answers(stubber: Stubber, until: datetime, hold: str = "OFF") -> None:
    stubber.add_response("head_object", {"ContentLength": 1, "VersionId": "v1", "Metadata": {"sha256": SHA_X}})
    stubber.add_response("get_object_retention", {"Retention": {"Mode": "COMPLIANCE", "RetainUntilDate": until}})
    stubber.add_response("get_object_legal_hold", {"LegalHold": {"Status": hold}})


def test_server_digest_refusal_becomes_integrity_rejected(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    _bucket_is_locked(stubber)
    stubber.add_client_error("head_object", "404", http_status_code=404)
    stubber.add_client_error("put_object", "BadDigest", "The Content-MD5 you specified did not match", 400)
    with pytest.raises(IntegrityRejected, match="BadDigest"):
        store.put("k", io.BytesIO(b"x"), 1, sha256=SHA_X, retention=_retention())
    stubber.assert_no_pending_responses()


def test_an_existing_key_is_never_overwritten(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    _bucket_is_locked(stubber)
    stubber.add_response("head_object", {"ContentLength": 1, "VersionId": "v0"})
    with pytest.raises(ObjectExists):
        store.put("k", io.BytesIO(b"x"), 1, sha256=SHA_X, retention=_retention())
    stubber.assert_no_pending_responses()


def test_a_bucket_without_lock_configuration_is_misconfigured(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_client_error("get_object_lock_configuration", "ObjectLockConfigurationNotFoundError", http_status_code=404)
    with pytest.raises(StoreMisconfigured, match="does not have S3 Object Lock enabled"):
        store.ensure_bucket()


def test_throttling_that_outlasts_the_retries_is_unavailable(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_client_error("head_bucket", "SlowDown", "Please reduce your request rate.", 503)
    with pytest.raises(StorageUnavailable, match="SlowDown.*try again later"):
        store.now()


def test_a_missing_object_is_not_found(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_client_error("head_object", "404", http_status_code=404)
    with pytest.raises(ObjectNotFound, match="object not found in the store: none$"):
        store.stat("none")


def test_an_object_without_retention_has_none(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_response("head_object", {"ContentLength": 1, "VersionId": "v1", "Metadata": {}})
    stubber.add_client_error("get_object_retention", "ObjectLockConfigurationNotFoundError", http_status_code=404)
    stubber.add_client_error("get_object_legal_hold", "ObjectLockConfigurationNotFoundError", http_status_code=404)
    info = store.stat("plain")
    assert info.retention is None and info.legal_hold is False and info.sha256 is None


def test_shortening_is_refused_before_the_server_is_asked(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    until = datetime(2031, 1, 1, tzinfo=timezone.utc)
    _stat_answers(stubber, until)
    with pytest.raises(RetentionViolation, match="can only be extended"):
        store.extend_retention("k", "v1", until - timedelta(seconds=1))
    stubber.assert_no_pending_responses()


def test_a_server_lock_refusal_on_delete_is_a_retention_violation(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    past = datetime(2020, 1, 1, tzinfo=timezone.utc)
    _stat_answers(stubber, past)
    stubber.add_response("head_bucket", {"ResponseMetadata": {"HTTPHeaders": {"date": "Sat, 21 Nov 2026 05:54:51 GMT"}}})
    stubber.add_client_error("delete_object", "AccessDenied", "forbidden by object lock", 403)
    with pytest.raises(RetentionViolation, match="forbidden by object lock"):
        store.delete("k", "v1")


def test_delete_of_a_held_object_is_refused_without_asking_the_server(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    _stat_answers(stubber, datetime(2020, 1, 1, tzinfo=timezone.utc), hold="ON")
    with pytest.raises(RetentionViolation, match="legal hold"):
        store.delete("k", "v1")
    stubber.assert_no_pending_responses()


def test_bad_metadata_names_are_refused_before_any_request(stubbed: tuple[S3Store, Stubber]) -> None:
    store, _ = stubbed
    with pytest.raises(StorageError, match="invalid metadata name"):
        store.put("k", io.BytesIO(b"x"), 1, sha256=SHA_X, retention=_retention(), metadata={"Has Space": "1"})
    with pytest.raises(StorageError, match="reserved"):
        store.put("k", io.BytesIO(b"x"), 1, sha256=SHA_X, retention=_retention(), metadata={"sha256": "1"})


def test_missing_credentials_are_unavailable_and_say_where_to_put_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = S3Store.from_url(f"s3://evidence?endpoint_url=http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(StorageUnavailable, match="no usable S3 credentials.*AWS_ACCESS_KEY_ID"):
        store.ensure_bucket()

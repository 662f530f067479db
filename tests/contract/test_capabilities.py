"""The optional capabilities of ``storage.base`` (``Staging``, ``UploadPlanning``, ``LocalPaths``,
``BucketSetup``) and ``confirm_stored``, each run on every backend that offers it
(``conftest.CAPABLE``)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from storage.base import (
    BucketSetup,
    LocalPaths,
    ObjectInfo,
    ObjectStore,
    Retention,
    Staging,
    UploadPlanning,
    confirm_stored,
)
from storage.errors import (
    IntegrityRejected,
    ObjectExists,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    StoredObjectMismatch,
    StoreMisconfigured,
)
from storage.local import LocalStore
from tests.contract.conftest import BACKENDS, CAPABLE

MiB = 1 << 20
PROTOCOLS = {"Staging": Staging, "UploadPlanning": UploadPlanning, "LocalPaths": LocalPaths, "BucketSetup": BucketSetup}


def _retention(store: ObjectStore, seconds: float = 3600) -> Retention:
    return Retention("COMPLIANCE", store.now() + timedelta(seconds=seconds))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_capability_table_is_what_each_backend_offers(request: pytest.FixtureRequest, backend: str) -> None:
    store = request.getfixturevalue(backend)
    offered = {name for name, protocol in PROTOCOLS.items() if isinstance(store, protocol)}
    declared = {name for name, backends in CAPABLE.items() if backend in backends}
    assert offered == declared
    assert isinstance(store, ObjectStore)


# ---- Staging ------------------------------------------------------------------------------------


def _stage(store: Staging, data: bytes, chunk: int = 64 * 1024):  # type: ignore[no-untyped-def]
    staging = store.open_staging(len(data))
    for start in range(0, len(data), chunk):
        staging.write(memoryview(data)[start : start + chunk])
    return staging.finish()


def _tmp_entries(store: ObjectStore) -> list[str]:
    assert isinstance(store, LocalStore)
    return sorted(os.listdir(store.root / "tmp"))


def test_a_committed_staged_copy_is_the_object_and_leaves_no_staging_file(staging_store: ObjectStore, prefix: str) -> None:
    assert isinstance(staging_store, Staging)
    data = os.urandom(300_000)
    staged = _stage(staging_store, data)
    assert staged.size == len(data)
    with pytest.raises(ObjectNotFound):
        staging_store.stat(prefix + "s")
    sha = hashlib.sha256(data).hexdigest()
    info = staging_store.commit_staged(staged, prefix + "s", sha256=sha, retention=_retention(staging_store),
                                       legal_hold=True, metadata={"blake3": "cd" * 32})
    assert (info.size, info.sha256, info.legal_hold, info.metadata.get("blake3")) == (len(data), sha, True, "cd" * 32)
    assert info.retention is not None and info.retention.mode == "COMPLIANCE"
    with staging_store.open(prefix + "s") as handle:
        assert handle.read() == data
    assert _tmp_entries(staging_store) == []
    staging_store.discard_staged(staged)  # after a commit: a no-op, the object stays
    assert staging_store.stat(prefix + "s").size == len(data)


def test_a_discarded_or_aborted_staging_file_leaves_nothing(staging_store: ObjectStore) -> None:
    assert isinstance(staging_store, Staging)
    staged = _stage(staging_store, b"x" * 10_000)
    staging_store.discard_staged(staged)
    staging_store.discard_staged(staged)
    half = staging_store.open_staging(10_000)
    half.write(memoryview(b"y" * 4096))
    half.abort()
    half.abort()
    assert _tmp_entries(staging_store) == []


def test_a_staging_file_given_fewer_bytes_than_declared_is_rejected_and_removed(staging_store: ObjectStore) -> None:
    assert isinstance(staging_store, Staging)
    staging = staging_store.open_staging(10_000)
    staging.write(memoryview(b"z" * 9_999))
    with pytest.raises(IntegrityRejected):
        staging.finish()
    assert _tmp_entries(staging_store) == []


def test_committing_onto_a_stored_key_never_overwrites_and_removes_the_staged_copy(
    staging_store: ObjectStore, prefix: str
) -> None:
    assert isinstance(staging_store, Staging)
    first = b"first bytes"
    staging_store.put(prefix + "k", io.BytesIO(first), len(first), sha256=hashlib.sha256(first).hexdigest(),
                      retention=_retention(staging_store))
    second = b"other bytes"
    staged = _stage(staging_store, second)
    with pytest.raises(ObjectExists):
        staging_store.commit_staged(staged, prefix + "k", sha256=hashlib.sha256(second).hexdigest(),
                                    retention=_retention(staging_store))
    with staging_store.open(prefix + "k") as handle:
        assert handle.read() == first
    assert _tmp_entries(staging_store) == []


# ---- UploadPlanning -----------------------------------------------------------------------------


def _open_uploads(store: ObjectStore, key: str) -> list[str]:
    bucket, full = getattr(store, "bucket"), getattr(store, "prefix") + key
    listing = getattr(store, "_client").list_multipart_uploads(Bucket=bucket, Prefix=full)
    return [u["UploadId"] for u in listing.get("Uploads", []) if u["Key"] == full]


def test_a_planned_multipart_put_stores_exactly_the_planned_bytes(planning_store: ObjectStore, prefix: str) -> None:
    assert isinstance(planning_store, UploadPlanning)
    data = os.urandom(12 * MiB + 123)
    sha = hashlib.sha256(data).hexdigest()
    plan = planning_store.plan_upload(len(data))
    assert plan is not None
    for start in range(0, len(data), MiB):
        plan.write(data[start : start + MiB])
    info = planning_store.put(prefix + "p", io.BytesIO(data), len(data), sha256=sha,
                              retention=_retention(planning_store), plan=plan)
    assert (info.size, info.sha256) == (len(data), sha)
    with planning_store.open(prefix + "p") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == sha
    assert planning_store.plan_upload(1000) is None  # small objects go whole, with no plan


def test_a_source_that_is_not_the_planned_bytes_is_refused_and_leaves_nothing(
    planning_store: ObjectStore, prefix: str
) -> None:
    assert isinstance(planning_store, UploadPlanning)
    data = os.urandom(12 * MiB)
    plan = planning_store.plan_upload(len(data))
    assert plan is not None
    plan.write(data)
    changed = bytearray(data)
    changed[7 * MiB] ^= 0xFF
    with pytest.raises(IntegrityRejected):
        planning_store.put(prefix + "q", io.BytesIO(bytes(changed)), len(data),
                           sha256=hashlib.sha256(data).hexdigest(), retention=_retention(planning_store), plan=plan)
    with pytest.raises(ObjectNotFound):
        planning_store.stat(prefix + "q")
    assert _open_uploads(planning_store, prefix + "q") == []


def test_a_plan_that_does_not_cover_the_object_is_refused_before_anything_is_sent(
    planning_store: ObjectStore, prefix: str
) -> None:
    assert isinstance(planning_store, UploadPlanning)
    data = os.urandom(12 * MiB)
    plan = planning_store.plan_upload(len(data))
    assert plan is not None
    plan.write(data[:-1])
    with pytest.raises(IntegrityRejected, match="upload plan covers"):
        planning_store.put(prefix + "r", io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(),
                           retention=_retention(planning_store), plan=plan)
    assert _open_uploads(planning_store, prefix + "r") == []


# ---- LocalPaths ---------------------------------------------------------------------------------


def test_a_local_path_holds_exactly_the_stored_bytes_read_only(local_paths_store: ObjectStore, prefix: str) -> None:
    assert isinstance(local_paths_store, LocalPaths)
    data = os.urandom(70_000)
    info = local_paths_store.put(prefix + "f", io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(),
                                 retention=_retention(local_paths_store))
    path = local_paths_store.local_path(prefix + "f", info.version)
    assert Path(path).read_bytes() == data
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o222 == 0
    with pytest.raises(ObjectNotFound):
        local_paths_store.local_path(prefix + "missing")
    with pytest.raises(ObjectNotFound):
        local_paths_store.local_path(prefix + "f", "not-the-version")


# ---- BucketSetup --------------------------------------------------------------------------------


def test_an_existing_lock_capable_container_passes_the_setup_check(setup_store: ObjectStore) -> None:
    assert isinstance(setup_store, BucketSetup)
    setup_store.ensure_bucket()
    setup_store.ensure_bucket(create=True)  # never changes an existing one


def test_a_missing_container_is_unavailable_until_created(
    setup_store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert isinstance(setup_store, BucketSetup)
    if isinstance(setup_store, LocalStore):
        missing: ObjectStore = LocalStore(tmp_path / "elsewhere")
    else:
        from storage.s3 import S3Store

        assert isinstance(setup_store, S3Store)
        missing = S3Store(f"custody-missing-{uuid.uuid4().hex[:8]}", endpoint_url=setup_store.endpoint_url,
                          region="us-east-1")
    assert isinstance(missing, BucketSetup)
    with pytest.raises(StorageUnavailable):
        missing.ensure_bucket()
    missing.ensure_bucket(create=True, default_retention_days=1)
    missing.ensure_bucket()
    data = b"in a new container"
    info = missing.put("k", io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(),
                       retention=_retention(missing, 60))
    assert info.size == len(data)


# ---- confirm_stored -----------------------------------------------------------------------------


def test_confirmation_of_a_real_put_and_of_each_way_it_can_differ(store: ObjectStore, prefix: str) -> None:
    data = b"confirmed evidence"
    sha = hashlib.sha256(data).hexdigest()
    asked = _retention(store)
    info = store.put(prefix + "c", io.BytesIO(data), len(data), sha256=sha, retention=asked)
    confirm_stored(info, retention=asked, legal_hold=False, size=len(data), sha256=sha)
    with pytest.raises(StoredObjectMismatch, match="SHA-256") as wrong_sha:
        confirm_stored(info, retention=asked, legal_hold=False, size=len(data), sha256="0" * 64)
    assert wrong_sha.value.exit_code == 3
    with pytest.raises(StoredObjectMismatch, match="bytes"):
        confirm_stored(info, retention=asked, legal_hold=False, size=len(data) + 1, sha256=sha)
    unreported = ObjectInfo(info.key, info.version, info.size, None, info.retention, info.legal_hold)
    with pytest.raises(StoredObjectMismatch, match=r"\(none\)"):
        confirm_stored(unreported, retention=asked, legal_hold=False, sha256=sha)
    with pytest.raises(StoreMisconfigured, match="earlier than") as weak:
        confirm_stored(info, retention=Retention("COMPLIANCE", asked.until + timedelta(days=1)), legal_hold=False)
    assert weak.value.exit_code == 5
    with pytest.raises(StoreMisconfigured, match="legal hold is not on"):
        confirm_stored(info, retention=asked, legal_hold=True)
    assert not isinstance(StoredObjectMismatch("x"), (IntegrityRejected, StoreMisconfigured))
    assert isinstance(StoredObjectMismatch("x"), StorageError)

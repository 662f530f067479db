"""The storage contract (storage/base.py), run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import hashlib
import io
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from storage.base import ObjectStore, Retention
from storage.errors import IntegrityRejected, ObjectExists, ObjectNotFound, RetentionViolation


def _retention(store: ObjectStore, seconds: float) -> Retention:
    return Retention("COMPLIANCE", store.now() + timedelta(seconds=seconds))


def _put(store: ObjectStore, key: str, data: bytes, seconds: float = 3600, **kw: object):  # type: ignore[no-untyped-def]
    return store.put(
        key,
        io.BytesIO(data),
        len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        retention=_retention(store, seconds),
        **kw,  # type: ignore[arg-type]
    )


def test_put_then_stat_and_open_return_the_exact_object(store: ObjectStore, prefix: str) -> None:
    data = os.urandom(300_000)
    info = _put(store, prefix + "a", data, metadata={"blake3": "ab" * 32})
    again = store.stat(prefix + "a")
    assert again.size == info.size == len(data)
    assert again.sha256 == hashlib.sha256(data).hexdigest()
    assert again.version == info.version and again.version
    assert again.retention is not None and again.retention.mode == "COMPLIANCE"
    assert again.retention.until > store.now() + timedelta(minutes=50)
    assert again.legal_hold is False
    assert again.metadata.get("blake3") == "ab" * 32
    with store.open(prefix + "a", info.version) as handle:
        assert handle.read() == data


def test_zero_byte_object(store: ObjectStore, prefix: str) -> None:
    info = _put(store, prefix + "empty", b"")
    assert info.size == 0
    with store.open(prefix + "empty") as handle:
        assert handle.read() == b""


@pytest.mark.parametrize("lie", ["sha256", "size"])
def test_put_with_wrong_digest_or_size_is_rejected_and_leaves_nothing(
    store: ObjectStore, prefix: str, lie: str
) -> None:
    data = os.urandom(50_000)
    sha = hashlib.sha256(data).hexdigest()
    size = len(data)
    if lie == "sha256":
        sha = hashlib.sha256(data + b"x").hexdigest()
    else:
        size += 1
    with pytest.raises(IntegrityRejected):
        store.put(prefix + "bad", io.BytesIO(data), size, sha256=sha, retention=_retention(store, 60))
    with pytest.raises(ObjectNotFound):
        store.stat(prefix + "bad")
    assert [o.key for o in store.list(prefix)] == []


def test_put_never_overwrites(store: ObjectStore, prefix: str) -> None:
    _put(store, prefix + "k", b"first")
    with pytest.raises(ObjectExists):
        _put(store, prefix + "k", b"second")
    with store.open(prefix + "k") as handle:
        assert handle.read() == b"first"


def test_retention_extends_but_never_shortens(store: ObjectStore, prefix: str) -> None:
    info = _put(store, prefix + "r", b"evidence")
    assert info.retention is not None
    later = info.retention.until + timedelta(days=30)
    extended = store.extend_retention(prefix + "r", info.version, later)
    assert extended.retention is not None
    assert abs((extended.retention.until - later).total_seconds()) < 1
    with pytest.raises(RetentionViolation):
        store.extend_retention(prefix + "r", info.version, info.retention.until)
    after = store.stat(prefix + "r")
    assert after.retention is not None
    assert abs((after.retention.until - later).total_seconds()) < 1
    assert after.retention.mode == "COMPLIANCE"


def test_retained_object_cannot_be_deleted(store: ObjectStore, prefix: str) -> None:
    info = _put(store, prefix + "d", b"keep me")
    with pytest.raises(RetentionViolation):
        store.delete(prefix + "d", info.version)
    with store.open(prefix + "d") as handle:
        assert handle.read() == b"keep me"


def test_legal_hold_blocks_deletion_after_retention_expires(store: ObjectStore, prefix: str) -> None:
    info = _put(store, prefix + "h", b"held", seconds=2, legal_hold=True)
    assert info.legal_hold is True
    time.sleep(3)
    with pytest.raises(RetentionViolation):
        store.delete(prefix + "h", info.version)
    assert store.stat(prefix + "h").size == 4
    released = store.set_legal_hold(prefix + "h", info.version, False)
    assert released.legal_hold is False
    store.delete(prefix + "h", info.version)
    with pytest.raises(ObjectNotFound):
        store.stat(prefix + "h")


def test_list_yields_every_object_once_in_key_order(store: ObjectStore, prefix: str) -> None:
    keys = [f"{prefix}x/{i:03d}" for i in (5, 1, 3, 2, 4)]
    for key in keys:
        _put(store, key, key.encode())
    listed = [o.key for o in store.list(prefix + "x/")]
    assert listed == sorted(keys)
    assert {o.size for o in store.list(prefix + "x/")} == {len(keys[0])}


def test_list_and_stat_say_when_the_store_received_the_object(store: ObjectStore, prefix: str) -> None:
    before = store.now() - timedelta(seconds=2)
    _put(store, prefix + "when/1", b"received")
    after = store.now() + timedelta(seconds=2)
    [listed] = store.list(prefix + "when/")
    for stored_at in (listed.stored_at, store.stat(prefix + "when/1").stored_at):
        assert stored_at is not None and before <= stored_at <= after


def test_missing_object(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ObjectNotFound):
        store.stat(prefix + "nope")
    with pytest.raises(ObjectNotFound):
        store.open(prefix + "nope")


def test_store_clock_is_utc_and_close(store: ObjectStore) -> None:
    now = store.now()
    assert now.tzinfo is not None
    assert abs((now - datetime.now(timezone.utc)).total_seconds()) < 300


def test_lock_self_test_reports_three_probes(store: ObjectStore) -> None:
    probes = store.lock_self_test()
    assert [p.action for p in probes] == ["delete-version", "shorten-retention", "switch-to-governance"]
    assert all(p.refused for p in probes), probes
    canaries = [o for o in store.list("canary/")]
    assert canaries, "the canary object must stay in the store under retention"

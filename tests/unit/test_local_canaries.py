"""Lock self-tests on the local store do not leave their canaries behind forever."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from storage.base import Retention
from storage.local import LocalStore


def test_a_self_test_deletes_earlier_expired_canaries_and_nothing_else(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore.create(tmp_path / "store")
    real_now = store.now
    other = store.put("canary/notes.txt", io.BytesIO(b"x"), 1,
                      sha256="2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
                      retention=Retention("COMPLIANCE", real_now() + timedelta(seconds=1)))
    assert all(p.refused for p in store.lock_self_test())
    first = {o.key for o in store.list("canary/")} - {other.key}
    assert len(first) == 1
    assert all(p.refused for p in store.lock_self_test()), "an unexpired canary stays"
    assert first < {o.key for o in store.list("canary/")}
    monkeypatch.setattr(store, "now", lambda: real_now() + timedelta(minutes=2))
    assert all(p.refused for p in store.lock_self_test())
    left = {o.key for o in store.list("canary/")}
    assert other.key in left, "not a canary: left alone"
    assert len(left - {other.key}) == 1 and not (left & first), "only the newest canary remains"
    assert not (tmp_path / "store" / "objects" / next(iter(first))).exists()

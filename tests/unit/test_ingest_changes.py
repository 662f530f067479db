"""A file that changes while it is read is never recorded."""

from __future__ import annotations

from pathlib import Path

from custody.ingest import Ingestor
from custody.ledger import Ledger
from storage.local import LocalStore


def _setup(tmp_path: Path) -> tuple[Ledger, LocalStore]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.create()
    return ledger, LocalStore.create(tmp_path / "store")


def test_file_that_grows_while_read_is_not_recorded(tmp_path: Path) -> None:
    ledger, store = _setup(tmp_path)
    path = tmp_path / "growing.mp4"
    path.write_bytes(b"x" * (9 << 20))

    def grow(_: str) -> None:
        with path.open("ab") as handle:
            handle.write(b"more footage")

    ingestor = Ingestor(ledger, store, actor="t", after_read=grow)
    [result] = ingestor.run([str(path)])
    assert result.status == "failed"
    assert "changed while it was read" in (result.reason or "")
    assert ledger.head()[0] == 0
    assert list(store.list()) == []
    assert list((tmp_path / "store" / "tmp").iterdir()) == [], "the staged copy must be discarded"


def test_file_rewritten_in_place_between_hash_and_store_is_not_recorded(tmp_path: Path) -> None:
    ledger, store = _setup(tmp_path)
    path = tmp_path / "rewritten.mp4"
    path.write_bytes(b"a" * 5000)
    state = {"calls": 0}

    def rewrite(_: str) -> None:
        state["calls"] += 1
        with path.open("r+b") as handle:
            handle.write(b"b")

    ingestor = Ingestor(ledger, store, actor="t", after_read=rewrite)
    [result] = ingestor.run([str(path)])
    assert result.status == "failed"
    assert ledger.head()[0] == 0
    assert list(store.list()) == []
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_the_copy_made_while_hashing_is_what_gets_stored(tmp_path: Path) -> None:
    import blake3

    ledger, store = _setup(tmp_path)
    path = tmp_path / "clip.mp4"
    data = bytes(range(256)) * 40_000
    path.write_bytes(data)
    staged = []
    original = store.stage_copy

    def spy(fd: int, size: int):  # type: ignore[no-untyped-def]
        copy = original(fd, size)
        staged.append(copy)
        return copy

    store.stage_copy = spy  # type: ignore[method-assign]
    [result] = Ingestor(ledger, store, actor="t").run([str(path)])
    assert result.status == "recorded" and len(staged) == 1
    stored = tmp_path / "store" / "objects" / "evidence" / blake3.blake3(data).hexdigest()
    assert stored.read_bytes() == data
    assert not staged[0].path.exists()

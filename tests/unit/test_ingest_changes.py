"""A file that changes while it is read is never recorded."""

from __future__ import annotations

from pathlib import Path

from custody.evidence.ingest import Ingestor
from custody.ledger.database import Ledger
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


def test_the_bytes_staged_while_hashing_are_what_gets_stored(tmp_path: Path) -> None:
    import blake3

    ledger, store = _setup(tmp_path)
    path = tmp_path / "clip.mp4"
    # more than one pipeline chunk, and a tail that is not a whole number of blocks
    data = bytes(range(256)) * 300_001
    path.write_bytes(data)
    staged = []
    original = store.open_staging

    def spy(size: int):  # type: ignore[no-untyped-def]
        staging = original(size)
        staged.append(staging)
        return staging

    store.open_staging = spy  # type: ignore[method-assign]
    [result] = Ingestor(ledger, store, actor="t").run([str(path)])
    assert result.status == "recorded" and len(staged) == 1
    stored = tmp_path / "store" / "objects" / "evidence" / blake3.blake3(data).hexdigest()
    assert stored.read_bytes() == data
    assert not staged[0].path.exists()


def test_a_failing_store_write_leaves_nothing_staged_or_recorded(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    import storage.staging
    from storage.errors import StorageUnavailable

    ledger, store = _setup(tmp_path)
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"z" * (40 << 20))
    original = storage.staging._pwrite_all
    calls = {"n": 0}

    def write_then_fail(fd: int, chunk: memoryview, offset: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        original(fd, chunk, offset)

    monkeypatch.setattr(storage.staging, "_pwrite_all", write_then_fail)
    with pytest.raises(StorageUnavailable, match="No space left on device") as raised:
        Ingestor(ledger, store, actor="t").run([str(path)])
    assert str(tmp_path / "store") in str(raised.value)
    assert ledger.head()[0] == 0
    assert list(store.list()) == []
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_staging_writes_the_same_bytes_with_and_without_direct_io(tmp_path: Path) -> None:
    import os

    import pytest

    from storage.local import StagingFile

    import mmap

    data = os.urandom(3 * 4096 * 256 + 777)
    aligned = mmap.mmap(-1, len(data))  # page-aligned, as hash_stream's buffers are
    aligned[:] = data
    places = [tmp_path]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        places.append(Path("/dev/shm"))  # tmpfs refuses O_DIRECT: buffered writes instead
    for place in places:
        staging = StagingFile.open(place, len(data), place)
        view = memoryview(aligned)
        for start in range(0, len(data), 4096 * 256):
            staging.write(view[start : start + 4096 * 256])
        staged = staging.finish()
        try:
            assert staged.path.read_bytes() == data, place
        finally:
            staged.path.unlink()
    short = StagingFile.open(tmp_path, 10, tmp_path)
    short.write(memoryview(b"12345"))
    with pytest.raises(Exception, match="5 bytes were staged where 10"):
        short.finish()
    assert list(tmp_path.glob("*.part")) == []


def _slow_opening(tmp_path: Path, monkeypatch, gate):  # type: ignore[no-untyped-def]
    """A LedgerOpening that is not ready until ``gate`` is set."""
    import custody.workspace
    from custody.settings import Settings

    real = custody.workspace.open_ledger

    def slow(settings, hooks=()):  # type: ignore[no-untyped-def]
        gate.wait(30)
        return real(settings, hooks)

    monkeypatch.setattr(custody.workspace, "open_ledger", slow)
    settings = Settings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'l.db'}", store_url="", actor="t")
    return custody.workspace.LedgerOpening(settings)


def test_the_first_file_is_read_while_the_ledger_opens_and_a_repeat_is_not_stored_twice(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    ledger, store = _setup(tmp_path)
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"r" * (20 << 20))
    [first] = Ingestor(ledger, store, actor="t").run([str(path)])
    assert first.status == "recorded"

    gate = threading.Event()
    opening = _slow_opening(tmp_path, monkeypatch, gate)
    staged_while_opening: list[bool] = []
    original = store.open_staging

    def spy(size: int):  # type: ignore[no-untyped-def]
        staged_while_opening.append(not opening.ready())
        return original(size)

    store.open_staging = spy  # type: ignore[method-assign]
    read = {"done": False}

    def after_read(_: str) -> None:
        read["done"] = True
        gate.set()  # the ledger becomes ready only once the whole file has been read

    [again] = Ingestor(opening, store, actor="t", after_read=after_read).run([str(path)])
    assert read["done"] and staged_while_opening == [True], "the file must be read before the ledger is ready"
    assert again.status == "already-stored" and again.blake3 == first.blake3
    assert [o.key for o in store.list() if o.key.startswith("evidence/")] == [f"evidence/{first.blake3}"]
    assert list((tmp_path / "store" / "tmp").iterdir()) == [], "the speculative staged copy must be discarded"
    assert ledger.head()[0] == 2


def test_a_ledger_that_fails_to_open_in_the_background_fails_the_command_and_keeps_nothing(tmp_path: Path) -> None:
    import pytest

    from custody.errors import ConfigError
    from custody.workspace import LedgerOpening
    from custody.errors import LedgerUnavailable
    from custody.settings import Settings

    store = LocalStore.create(tmp_path / "store")
    (tmp_path / "empty.db").write_bytes(b"")  # a database file with no schema: 'run custody init'
    settings = Settings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'empty.db'}", store_url="", actor="t")
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"s" * (3 << 20))
    with pytest.raises((LedgerUnavailable, ConfigError), match="custody init"):
        Ingestor(LedgerOpening(settings), store, actor="t").run([str(path)])
    assert list(store.list()) == []
    assert list((tmp_path / "store" / "tmp").iterdir()) == []

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.evidence.hashing import blake3_file, hash_file, hash_stream, sha256_file
from tests.conftest import require_tool

DATA = Path(__file__).parent.parent / "data"


class _Pieces(io.RawIOBase):
    """A source whose reads end at the given cut points, or every ``step`` bytes: short reads,
    like a pipe or a network filesystem gives."""

    def __init__(self, data: bytes, cuts: list[int] | None = None, step: int | None = None) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._cuts = sorted({c for c in (cuts or []) if 0 < c < len(data)})
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        end = len(self._data)
        if self._step is not None:
            end = min(end, self._pos + self._step)
        end = min([end, *[c for c in self._cuts if c > self._pos]])
        count = min(len(buffer), end - self._pos)
        buffer[:count] = self._data[self._pos : self._pos + count]
        self._pos += count
        return count


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=20_000), cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12))
def test_any_chunking_equals_one_shot(data: bytes, cuts: list[int]) -> None:
    digests = hash_stream(_Pieces(data, cuts))
    assert digests.blake3 == blake3.blake3(data).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.size == len(data)


def test_stream_larger_than_the_chunk_size() -> None:
    data = bytes(range(256)) * (5 * 4096 * 16 + 3)
    digests = hash_stream(io.BytesIO(data))
    assert digests.blake3 == blake3.blake3(data).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()


def test_official_blake3_vectors() -> None:
    vectors = json.loads((DATA / "blake3_official_subset.json").read_text())
    cases = vectors["subset"]
    assert len(cases) >= 8
    for case in cases:
        data = bytes(i % 251 for i in range(case["input_len"]))
        assert hash_stream(_Pieces(data, step=1000)).blake3 == case["hash_32B_hex"], case["input_len"]


def test_files_agree_with_b3sum_and_sha256sum(tmp_path: Path) -> None:
    b3sum = require_tool("b3sum")
    sizes = [0, 1, 1023, 1024, 1025, 65_536, 3 * (4 << 20) + 17]
    for size in sizes:
        path = tmp_path / f"f{size}"
        path.write_bytes(hashlib.shake_256(str(size).encode()).digest(size) if size else b"")
        stock_b3 = subprocess.run([b3sum, str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
        stock_sha = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
        digests = hash_file(path)
        assert (digests.blake3, digests.sha256, digests.size) == (stock_b3, stock_sha, size)
        assert blake3_file(path) == stock_b3
        assert sha256_file(path) == stock_sha


def test_the_sink_receives_exactly_the_hashed_bytes_in_whole_chunks() -> None:
    from custody.evidence.hashing import CHUNK

    data = hashlib.shake_256(b"sink").digest(2 * CHUNK + 12_345)
    received: list[bytes] = []
    digests = hash_stream(_Pieces(data, step=1000), sink=lambda chunk: received.append(bytes(chunk)))
    assert b"".join(received) == data
    assert [len(c) for c in received] == [CHUNK, CHUNK, 12_345], "short reads must not cut chunks short"
    assert digests.blake3 == blake3.blake3(data).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()


def test_an_error_in_the_sink_stops_the_read() -> None:
    import pytest

    from custody.evidence.hashing import CHUNK

    data = b"q" * (5 * CHUNK)
    calls: list[int] = []

    def sink(chunk: memoryview) -> None:
        calls.append(len(chunk))
        raise RuntimeError("disk gone")

    source = io.BytesIO(data)
    with pytest.raises(RuntimeError, match="disk gone"):
        hash_stream(source, sink=sink)
    assert source.tell() < len(data), "the read must stop once the sink has failed"

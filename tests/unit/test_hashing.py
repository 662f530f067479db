from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.hashing import StreamHasher, blake3_file, hash_file, hash_stream, sha256_file
from tests.conftest import require_tool

DATA = Path(__file__).parent.parent / "data"


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=20_000), cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12))
def test_any_chunking_equals_one_shot(data: bytes, cuts: list[int]) -> None:
    hasher = StreamHasher()
    points = sorted({0, len(data), *[c for c in cuts if c <= len(data)]})
    for start, end in zip(points, points[1:]):
        hasher.update(data[start:end])
    digests = hasher.digests()
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
        hasher = StreamHasher()
        for start in range(0, len(data), 1000):
            hasher.update(data[start : start + 1000])
        assert hasher.digests().blake3 == case["hash_32B_hex"], case["input_len"]


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


class _Trickle(io.RawIOBase):
    """A source that returns at most 1000 bytes per read, like a pipe or a network filesystem."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        count = min(len(buffer), 1000, len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


def test_the_sink_receives_exactly_the_hashed_bytes_in_whole_chunks() -> None:
    from custody.hashing import CHUNK

    data = hashlib.shake_256(b"sink").digest(2 * CHUNK + 12_345)
    received: list[bytes] = []
    digests = hash_stream(_Trickle(data), sink=lambda chunk: received.append(bytes(chunk)))
    assert b"".join(received) == data
    assert [len(c) for c in received] == [CHUNK, CHUNK, 12_345], "short reads must not cut chunks short"
    assert digests.blake3 == blake3.blake3(data).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()


def test_an_error_in_the_sink_stops_the_read() -> None:
    import pytest

    from custody.hashing import CHUNK

    data = b"q" * (5 * CHUNK)
    calls: list[int] = []

    def sink(chunk: memoryview) -> None:
        calls.append(len(chunk))
        raise RuntimeError("disk gone")

    source = io.BytesIO(data)
    with pytest.raises(RuntimeError, match="disk gone"):
        hash_stream(source, sink=sink)
    assert source.tell() < len(data), "the read must stop once the sink has failed"

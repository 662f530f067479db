"""The package's three digests, one read: equal to one-shot hashing for any data and any
chunking, including buffers reused in turn (SHA-512 runs a chunk behind on its own thread)."""

from __future__ import annotations

import hashlib
import io

import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.package import digests
from custody.package.digests import PayloadDigests, stream_digests


def _expected(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest(),
            "blake3": blake3.blake3(data).hexdigest()}


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5000), cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12))
def test_fed_in_any_chunks_through_two_reused_buffers(data: bytes, cuts: list[int]) -> None:
    hasher = PayloadDigests()
    buffers = (bytearray(5000), bytearray(5000))
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for turn, (start, end) in enumerate(zip(points, points[1:])):
        buffer = buffers[turn % 2]
        buffer[: end - start] = data[start:end]
        hasher.update(memoryview(buffer)[: end - start])
    assert hasher.hexdigests() == _expected(data)
    assert hasher.size == len(data)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=3000), chunk=st.integers(min_value=1, max_value=700))
def test_a_stream_read_in_small_chunks(data: bytes, chunk: int) -> None:
    saved = digests.CHUNK
    setattr(digests, "CHUNK", chunk)
    try:
        found, size = stream_digests(io.BytesIO(data))
    finally:
        setattr(digests, "CHUNK", saved)
    assert found == _expected(data) and size == len(data)

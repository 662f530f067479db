"""Shards and rotation slots: which objects one audit run covers (see ``custody.audit``)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from custody.errors import BadInput

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based); ``Shard(1, 1)`` is everything."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise BadInput(f"shard {self.index}/{self.count}: K must be between 1 and N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with 1 <= K <= N; ``BadInput`` otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise BadInput(f"shard {text!r}: write it as K/N, e.g. 2/8")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def contains(self, digest: str) -> bool:
        """Whether the object with this hex digest (BLAKE3, or a key's SHA-256) is in this shard."""
        return shard_of(digest, self.count) == self.index


def shard_of(digest: str, count: int) -> int:
    """The shard (1..count) of an object: ``int(digest[:16], 16) % count + 1``."""
    return int(digest[:16], 16) % count + 1


def slot_of(digest: str, rotation: int) -> int:
    """The rotation slot (0..rotation-1) of an object: ``int(digest[16:32], 16) % rotation``."""
    return int(digest[16:32], 16) % rotation


def key_digest(key: str) -> str:
    """The digest that places a stored key in a shard: its name when that is a 64-hex digest
    (``evidence/<blake3>``, ``packets/<blake3>``), else SHA-256 of the key."""
    name = key.rsplit("/", 1)[-1]
    return name if HEX64.match(name) else hashlib.sha256(key.encode("utf-8")).hexdigest()

"""The canonical byte form of ledger events: JSON, sorted keys, no insignificant whitespace,
UTF-8, integers only (in the style of RFC 8785). The same bytes are hashed."""

from __future__ import annotations

import json
from typing import Any


def _check(value: Any, where: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:
            raise ValueError(f"{where}: integer {value} is outside the exactly representable range")
        return
    if isinstance(value, float):
        raise ValueError(f"{where}: floats are not allowed in canonical events; use integers")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: object keys must be strings")
            _check(item, f"{where}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]")
        return
    raise ValueError(f"{where}: {type(value).__name__} cannot be part of a canonical event")


def canonical_bytes(value: Any) -> bytes:
    """Serialize ``value`` canonically. Raises ``ValueError`` for floats, non-string keys,
    unencodable strings (lone surrogates) and other non-JSON values."""
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def printable_path(path: str) -> str:
    """A path as valid Unicode: undecodable bytes from the filesystem become ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

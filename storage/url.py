"""Choose a store from a URL: ``file:///path`` or ``s3://bucket[/prefix]?endpoint_url=...``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from storage.base import ObjectStore
from storage.errors import StorageError


def open_store(url: str) -> ObjectStore:
    """Return the backend a store URL names. The S3 backend (and boto3) is imported only here."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"file store URLs must be file:///absolute/path, not {url!r}")
        from storage.local import LocalStore

        return LocalStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from storage.s3 import S3Store

        return S3Store.from_url(url)
    raise StorageError(
        f"unknown store URL {url!r}: use file:///path/to/dir or s3://bucket?endpoint_url=..."
    )

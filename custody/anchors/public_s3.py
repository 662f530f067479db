"""The public log (``custody.anchors.tiles``) published to an S3 prefix, to be served as a
static site (a public-read bucket policy, a website endpoint or a CDN in front of it).

Incremental: only the tiles the published checkpoint does not cover are sent, each with
``If-None-Match: *`` (an existing object is never replaced when it holds the same bytes; one
left by an interrupted run of another tree, which no published checkpoint refers to, is
replaced); the checkpoint goes last, once the server has acknowledged every tile, so a reader
never sees a checkpoint whose tiles are missing.

Headers for a public static log: tiles are immutable (``Cache-Control: public,
max-age=31536000, immutable``, ``application/octet-stream``); the checkpoint changes with each
publication (``public, max-age=CHECKPOINT_MAX_AGE``, ``text/plain; charset=utf-8``).

Credentials come from boto3's standard chain, as for the evidence store. The endpoint and region
are those of the target URL (``?endpoint_url=...&region=...``), else those of the evidence
store's URL when it is an ``s3://`` one, so a log published next to the evidence needs no more
than ``s3://BUCKET/PREFIX``.
"""

from __future__ import annotations

from collections.abc import Iterable

from custody.errors import BadInput
from storage.errors import StorageError
from storage.s3.static import StaticObject, StaticSite
from storage.s3.url import parse_store_url

TILE_CACHE = "public, max-age=31536000, immutable"
TILE_TYPE = "application/octet-stream"
CHECKPOINT_MAX_AGE = 30
"""Seconds a reader or a cache may keep the checkpoint before asking again."""
CHECKPOINT_CACHE = f"public, max-age={CHECKPOINT_MAX_AGE}"
CHECKPOINT_TYPE = "text/plain; charset=utf-8"


class S3Log:
    """A tlog-tiles log under an S3 prefix (a ``PublicLog``)."""

    def __init__(self, site: StaticSite) -> None:
        self.site = site
        self.outcomes: dict[str, int] = {"written": 0, "same": 0, "replaced": 0}

    def where(self, name: str) -> str:
        base = f"s3://{self.site.bucket}/{self.site.prefix}"
        return base + name if name else base.rstrip("/")

    def read_checkpoint(self) -> bytes | None:
        return self.site.read("checkpoint", 1 << 16)

    def write_tiles(self, tiles: Iterable[tuple[str, bytes]]) -> int:
        items = (StaticObject(name, data, TILE_TYPE, TILE_CACHE) for name, data in tiles)
        for outcome in self.site.put_all(items, self._put_tile):
            self.outcomes[outcome] += 1
        return self.outcomes["written"] + self.outcomes["replaced"]

    def _put_tile(self, item: StaticObject) -> str:
        found = self.site.put_new(item)
        if found == "different":
            self.site.put(item)
            return "replaced"
        return found

    def write_checkpoint(self, data: bytes) -> None:
        self.site.put(StaticObject("checkpoint", data, CHECKPOINT_TYPE, CHECKPOINT_CACHE))


def open_s3_log(url: str, store_url: str | None = None) -> S3Log:
    """The ``S3Log`` of ``s3://BUCKET/PREFIX[?endpoint_url=...&region=...]``; without an
    endpoint (or region) in it, the evidence store's (``store_url``) when that is on S3."""
    try:
        bucket, prefix, options = parse_store_url(url)
    except StorageError as exc:
        raise BadInput(f"TARGET: {exc}") from exc
    if not prefix.strip("/"):
        raise BadInput("TARGET: give a prefix (s3://BUCKET/PREFIX), so that the log has its own place in the bucket")
    if store_url and store_url.startswith("s3://"):
        try:
            _, _, store = parse_store_url(store_url)
        except StorageError:
            store = {}
        for name in ("endpoint_url", "region"):
            if options.get(name) is None and store.get(name) is not None:
                options[name] = store[name]
    return S3Log(StaticSite(bucket, prefix, **options))

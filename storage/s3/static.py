"""A key prefix of a bucket served as static files to the public (a website, a CDN origin, a
mirror): small objects read whole and written whole, each with its ``Content-Type`` and
``Cache-Control``, through the same client, credentials chain, deadlines and error boundary as
``S3Store``. No Object Lock is required or asked for (a bucket's default retention, if any, still
applies: an overwritten object then leaves its old version behind).

``put`` sends ``Content-MD5`` and signs the body's SHA-256, so the server stores exactly the
bytes given or nothing. ``put_new`` adds ``If-None-Match: *`` and never replaces an object: an
existing one is read back and reported as the same or different, for the caller to decide.
``put_all`` sends many objects, a few at a time, and returns only when the server acknowledged
every one (or raises the first error after the others finished): a caller that writes an index
after ``put_all`` never publishes an index whose objects are missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from storage.errors import ObjectExists, ObjectNotFound, StorageError, StorageUnavailable
from storage.s3.bucket import S3Bucket, b64
from storage.s3.client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_READ_TIMEOUT,
    KNOWN_PAYLOAD_PARAMETER,
    S3Client,
    make_client,
    sign_known_payloads,
)
from storage.s3.translate import code_of
from storage.s3.url import parse_store_url

MAX_STATIC_OBJECT = 16 << 20
"""The largest object ``read`` and ``put`` handle (they hold it in memory)."""


@dataclass(frozen=True)
class StaticObject:
    """One object to publish: its key under the prefix, bytes and HTTP headers."""

    key: str
    data: bytes
    content_type: str
    cache_control: str


Outcome = Literal["written", "same", "different"]
"""What ``put_new`` found: it wrote the object, or one was there with the same or other bytes."""


class StaticSite(S3Bucket):
    """``s3://bucket/prefix`` as a static site. Thread-safe once made."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_workers: int = 8,
        client: S3Client | None = None,
        **_ignored: Any,
    ) -> None:
        if not bucket or "/" in bucket:
            raise StorageError(f"invalid bucket name {bucket!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.max_attempts = max_attempts
        self.read_timeout = read_timeout
        self.max_workers = max(1, min(max_workers, 32))
        self._lock_checked = False
        self._making = None
        if client is None:
            try:
                client = make_client(endpoint_url, region, connect_timeout=connect_timeout, read_timeout=read_timeout,
                                     max_attempts=max_attempts, max_pool_connections=self.max_workers + 2)
            except (BotoCoreError, ValueError) as exc:
                raise self._translate(exc, "setting up a client for") from exc
        sign_known_payloads(client)
        self._made = client

    @classmethod
    def from_url(cls, url: str, **options: Any) -> StaticSite:
        """``s3://bucket[/prefix][?endpoint_url=...&region=...]`` (``storage.s3.url``); the
        evidence store's tuning parameters are accepted and those that mean nothing here ignored."""
        bucket, prefix, settings = parse_store_url(url)
        return cls(bucket, prefix, **{**settings, **options})

    def _translate(self, exc: Exception, action: str, key: str | None = None, version: str | None = None,
                   lock: bool = False) -> StorageError:
        """As for a store, except that a missing bucket is not told to get Object Lock."""
        if isinstance(exc, ClientError) and code_of(exc) == "NoSuchBucket":
            return StorageUnavailable(
                f"bucket {self.bucket} does not exist at {self._endpoint()} ({action} {key or 'it'}); fix the "
                f"URL, or create the bucket (aws s3api create-bucket --bucket {self.bucket}) and, to serve it "
                "to the public, give it a policy that lets anyone read (s3:GetObject)"
            )
        return super()._translate(exc, action, key, version, lock)

    def url_of(self, key: str) -> str:
        """``s3://bucket/prefix/key``, for messages and reports."""
        return f"s3://{self.bucket}/{self._full_key(key)}"

    def read(self, key: str, limit: int = MAX_STATIC_OBJECT) -> bytes | None:
        """The object's bytes, or None if there is none; ``StorageError`` if it is larger than
        ``limit`` bytes."""
        full = self._full_key(key)
        try:
            with self._boundary("reading", key):
                response = self._client.get_object(Bucket=self.bucket, Key=full)
                body = response["Body"]
                try:
                    data: bytes = body.read(limit + 1)
                finally:
                    body.close()
        except ObjectNotFound:
            return None
        if len(data) > limit:
            raise StorageError(f"{self.url_of(key)} is larger than {limit} bytes; it is not what this program wrote")
        return data

    def put(self, item: StaticObject) -> None:
        """Store ``item`` (replacing any object of that key)."""
        self._put(item, new_only=False)

    def put_new(self, item: StaticObject) -> Outcome:
        """Store ``item`` unless its key exists; then say whether the existing bytes are the same."""
        try:
            self._put(item, new_only=True)
        except ObjectExists:
            return "same" if self.read(item.key, max(len(item.data), 1)) == item.data else "different"
        return "written"

    def put_all(self, items: Iterable[StaticObject], store: Callable[[StaticObject], Any] | None = None,
                progress: Callable[[int], None] | None = None) -> list[Any]:
        """``store(item)`` (default ``put_new``) for every item, ``max_workers`` at a time, with
        at most twice that many items in memory; the results in order. Returns when every
        item is stored; on an error, waits for the items in flight, then raises it."""
        action = store or self.put_new
        results: list[Any] = []
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="s3-static") as pool:
            pending: list[Future[Any]] = []

            def take_oldest() -> None:
                future = pending.pop(0)
                try:
                    results.append(future.result())
                except BaseException:
                    for other in pending:
                        other.cancel()
                    wait(pending)
                    raise
                if progress is not None:
                    progress(1)

            for item in items:
                pending.append(pool.submit(action, item))
                if len(pending) >= 2 * self.max_workers:
                    take_oldest()
            while pending:
                take_oldest()
        return results

    def _put(self, item: StaticObject, *, new_only: bool) -> None:
        if len(item.data) > MAX_STATIC_OBJECT:
            raise StorageError(f"{item.key}: {len(item.data)} bytes is more than a static object may hold here")
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._full_key(item.key),
            "Body": item.data,
            "ContentLength": len(item.data),
            "ContentMD5": b64(hashlib.md5(item.data).digest()),
            "ContentType": item.content_type,
            "CacheControl": item.cache_control,
            KNOWN_PAYLOAD_PARAMETER: hashlib.sha256(item.data).hexdigest(),
        }
        if new_only:
            params["IfNoneMatch"] = "*"
        try:
            self._client.put_object(**params)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "publishing", item.key) from exc

"""``S3Store``: the ``ObjectStore`` verbs on an S3 bucket with Object Lock."""

from __future__ import annotations

import builtins
import hashlib
import io
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO, Literal, cast

from botocore.exceptions import BotoCoreError, ClientError

from storage.base import (
    Capabilities,
    LockProbe,
    ObjectInfo,
    ProgressCallback,
    Retention,
    confirm_stored,
    format_utc,
    whole_second_ceiling,
)
from storage.errors import (
    IntegrityRejected,
    RetentionViolation,
    StorageError,
    StorageUnavailable,
)
from storage.s3.bucket import b64, head_hold, head_retention, utc
from storage.s3.client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_READ_TIMEOUT,
    S3Client,
    in_background,
    make_client,
    sign_known_payloads,
)
from storage.s3.leftovers import unfinished_uploads
from storage.s3.readers import ObjectReader
from storage.s3.translate import NOT_FOUND_CODES, code_of, server_message, status_of
from storage.s3.url import parse_store_url
from storage.s3.uploads import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    DEFAULT_WORKERS,
    IN_MEMORY_LIMIT,
    MIN_PART_SIZE,
    MiB,
    S3Uploads,
    UploadPlan,
)
from storage.staging import Leftover

_Probes = list[LockProbe]
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_METADATA_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class S3Store(S3Uploads):
    """An S3 bucket with Object Lock, optionally under a key prefix; see the module docstring.

    Thread-safe: one store may serve several threads (the boto3 client is shared).
    """

    capabilities = Capabilities(
        worm="server",
        description=(
            "S3 Object Lock: COMPLIANCE retention and legal holds are enforced by the storage "
            "server; lock_self_test checks that the server really refuses to weaken them"
        ),
    )

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        max_workers: int = DEFAULT_WORKERS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_mode: Literal["standard", "adaptive"] = "standard",
        flexible_checksums: bool = True,
        in_memory_limit: int = IN_MEMORY_LIMIT,
        canary_seconds: int = 60,
        clock: Callable[[], datetime] | None = None,
        client: S3Client | None = None,
    ) -> None:
        """A store for ``bucket`` (keys are stored under ``prefix``).

        ``endpoint_url`` selects an S3-compatible server and path-style addressing; ``region``
        defaults to boto3's configuration. Objects larger than ``multipart_threshold`` bytes are
        sent as multipart uploads in parts of ``part_size`` bytes (at least 5 MiB; grown when an
        object would need more than 10,000 parts) by ``max_workers`` threads; smaller ones in
        one PutObject, read into memory up to ``in_memory_limit`` bytes and streamed above it
        (streamed only to a server that validates payload hashes; otherwise such an object goes
        multipart too). Each HTTP attempt is bounded by ``connect_timeout``/``read_timeout``
        seconds; throttling, 5xx answers and connection errors are retried with backoff by
        botocore's ``retry_mode`` up to ``max_attempts`` attempts in all.
        ``flexible_checksums`` adds ``x-amz-checksum-sha256`` to uploads. ``clock`` is only used
        when the server sends no Date header. ``client`` replaces the client built from the
        other arguments (for tests); without it the client is built on a background thread,
        and the first request waits for it.
        """
        if not bucket or "/" in bucket:
            raise StorageError(f"invalid bucket name {bucket!r}")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB)")
        if multipart_threshold < 0 or max_workers < 1 or max_attempts < 1 or canary_seconds < 10:
            raise ValueError(
                "need multipart_threshold >= 0, max_workers >= 1, max_attempts >= 1 "
                "and canary_seconds >= 10"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_workers = max_workers
        self.max_attempts = max_attempts
        self.read_timeout = read_timeout
        self.flexible_checksums = flexible_checksums
        self.in_memory_limit = in_memory_limit
        self.canary_seconds = canary_seconds
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock_checked = False
        self._payload_checked: bool | None = None
        self._payload_probe = threading.Lock()
        self._payload_soon: Future[bool] | None = None
        self._made: S3Client | None = None
        self._making: Future[S3Client] | None = None
        if client is None:

            def build() -> S3Client:
                made = make_client(
                    endpoint_url,
                    region,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    max_attempts=max_attempts,
                    retry_mode=retry_mode,
                    max_pool_connections=max(10, max_workers + 4),
                )
                sign_known_payloads(made)
                return made

            self._making = in_background("s3-client", build)
        else:
            sign_known_payloads(client)
            self._made = client


    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Store:
        """Build a store from ``s3://bucket[/prefix][?endpoint_url=...&region=...]`` (see
        ``storage.s3.url``). ``options`` are passed to the constructor."""
        bucket, prefix, settings = parse_store_url(url)
        return cls(bucket, prefix, **{**settings, **options})

    def __repr__(self) -> str:
        return f"S3Store({self._location()!r})"

    def put(
        self,
        key: str,
        source: BinaryIO,
        size: int,
        *,
        sha256: str,
        retention: Retention,
        legal_hold: bool = False,
        metadata: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
        plan: UploadPlan | None = None,
    ) -> ObjectInfo:
        """See ``ObjectStore.put`` and the module docstring.

        ``progress`` is called on the calling thread: once for a small object, once per part of
        a multipart upload, as the server acknowledges the bytes. Before a multipart upload,
        unfinished multipart uploads of the same key (left by an interrupted put whose abort did
        not reach the server) are aborted.

        ``plan`` (from ``plan_upload(size)``, given exactly the ``size`` bytes whose SHA-256 is
        ``sha256``) makes a multipart upload send every part with the digests computed in the
        caller's hash pass, so that the server refuses any part that is not those bytes, and
        nothing is hashed here; ``source`` must yield the same bytes again. A source with a file
        descriptor is then read with ``os.pread`` from its current position, by the threads that
        send the parts. A plan that does not cover ``size`` bytes is refused before anything is
        sent (``IntegrityRejected``); a small object ignores its plan.
        """
        full = self._full_key(key)
        expected = sha256.lower()
        if not _SHA256_HEX.match(expected):
            raise StorageError(f"not a SHA-256 hex digest: {sha256!r}")
        if size < 0:
            raise StorageError(f"negative size {size} for {key}")
        user_metadata = _object_metadata(expected, metadata)
        wanted = Retention(retention.mode, whole_second_ceiling(retention.until))
        multipart = self._multipart(size)
        if not multipart:
            plan = None
        elif plan is not None:
            plan.finish()
            if plan.size != size:
                raise IntegrityRejected(
                    f"the upload plan of {key} is for {plan.size} bytes, not {size}; nothing was sent"
                )
        self._require_lock()
        self._refuse_existing(key, full)
        if multipart:
            version = self._put_multipart(
                key, full, source, size, expected, wanted, legal_hold, user_metadata, progress, plan
            )
        elif size <= self.in_memory_limit:
            version = self._put_single(key, full, source, size, expected, wanted, legal_hold, user_metadata)
            if progress is not None:
                progress(size)
        else:
            version = self._put_stream(
                key, full, source, size, expected, wanted, legal_hold, user_metadata, progress
            )
        info = self.stat(key, version)
        confirm_stored(info, retention=wanted, legal_hold=legal_hold, size=size, sha256=expected)
        return info

    def stat(self, key: str, version: str | None = None) -> ObjectInfo:
        """See ``ObjectStore.stat``: HeadObject, which carries the object's retention and legal
        hold when the server reports them there (Ceph RGW, and AWS S3 for a caller allowed to
        read them); GetObjectRetention or GetObjectLegalHold only for what it left out (absent
        can mean "none" or "not shown to this caller"). An object without retention has
        ``retention=None``; the SHA-256 is the one recorded in ``x-amz-meta-sha256`` at upload
        (None for objects this program did not store)."""
        full = self._full_key(key)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if version:
            params["VersionId"] = version
        with self._boundary("reading", key, version):
            head = self._client.head_object(**params)
        found_version = str(head.get("VersionId") or "")
        lookup = found_version if found_version and found_version != "null" else None
        metadata = {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}
        sha256 = metadata.pop("sha256", None)
        hold = head_hold(head)
        return ObjectInfo(
            key=key,
            version=found_version if found_version != "null" else "",
            size=int(head.get("ContentLength", 0)),
            sha256=sha256,
            retention=head_retention(head) or self._retention_of(key, full, lookup),
            legal_hold=hold if hold is not None else self._hold_of(key, full, lookup),
            metadata=metadata,
            stored_at=utc(head["LastModified"]) if isinstance(head.get("LastModified"), datetime) else None,
        )

    def open(self, key: str, version: str | None = None) -> BinaryIO:
        """See ``ObjectStore.open``: a buffered stream over GetObject's body, pinned to the
        version first read. Seeking re-requests the rest of the object with a Range header. A
        stream that ends early raises ``StorageUnavailable``, never a silent short read."""
        full = self._full_key(key)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if version:
            params["VersionId"] = version
        with self._boundary("opening", key, version):
            response = self._client.get_object(**params)
        pinned = response.get("VersionId")
        raw = ObjectReader(
            self,
            key,
            full,
            str(pinned) if pinned and pinned != "null" else version,
            int(response.get("ContentLength", 0)),
            response["Body"],
        )
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=MiB))

    def _body_from(self, key: str, full: str, version: str | None, start: int) -> Any:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full, "Range": f"bytes={start}-"}
        if version:
            params["VersionId"] = version
        with self._boundary("reading", key, version):
            return self._client.get_object(**params)["Body"]

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """See ``ObjectStore.list``: ListObjectVersions, paged, current versions only (a key
        whose latest version is a delete marker is absent). Retention and hold are not listed
        (None/False); ``sha256`` is None."""
        paginator = self._client.get_paginator("list_object_versions")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        with self._boundary("listing", prefix or None):
            for page in pages:
                for entry in page.get("Versions", []) or []:
                    if not entry.get("IsLatest"):
                        continue
                    full = str(entry["Key"])
                    version = str(entry.get("VersionId") or "")
                    yield ObjectInfo(
                        key=full[len(self.prefix) :],
                        version="" if version == "null" else version,
                        size=int(entry.get("Size", 0)),
                        sha256=None,
                        retention=None,
                        legal_hold=False,
                        stored_at=utc(entry["LastModified"]) if isinstance(entry.get("LastModified"), datetime) else None,
                    )

    # ---- locks ------------------------------------------------------------------------------

    def extend_retention(self, key: str, version: str, until: datetime) -> ObjectInfo:
        """See ``ObjectStore.extend_retention``. ``until`` is rounded up to a whole second; a
        date earlier than the current one is refused here, before the server is asked, and a
        server refusal is a ``RetentionViolation`` too. The mode is kept (COMPLIANCE for an
        object that had no retention)."""
        full = self._full_key(key)
        info = self.stat(key, version)
        target = whole_second_ceiling(until)
        current = info.retention
        if current is not None and target < current.until:
            raise RetentionViolation(
                f"refusing to shorten the retention of {key} (version {version}) from "
                f"{format_utc(current.until)} to {format_utc(target)}: retention can only be extended"
            )
        if current is not None and target == current.until:
            return info
        mode = current.mode if current is not None else "COMPLIANCE"
        with self._boundary("extending the retention of", key, version, lock=True):
            self._client.put_object_retention(
                Bucket=self.bucket,
                Key=full,
                VersionId=version,
                Retention={"Mode": mode, "RetainUntilDate": target},
            )
        return self.stat(key, version)

    def set_legal_hold(self, key: str, version: str, on: bool) -> ObjectInfo:
        """See ``ObjectStore.set_legal_hold`` (PutObjectLegalHold)."""
        full = self._full_key(key)
        action = "placing a legal hold on" if on else "releasing the legal hold on"
        with self._boundary(action, key, version, lock=True):
            self._client.put_object_legal_hold(
                Bucket=self.bucket,
                Key=full,
                VersionId=version,
                LegalHold={"Status": "ON" if on else "OFF"},
            )
        return self.stat(key, version)

    def delete(self, key: str, version: str) -> None:
        """See ``ObjectStore.delete``. Refused here when ``stat`` shows a hold or a retention
        date after the server's ``now()``; the server's own refusal (403) is a
        ``RetentionViolation`` as well. A missing version raises ``ObjectNotFound``."""
        full = self._full_key(key)
        info = self.stat(key, version)
        if info.legal_hold:
            raise RetentionViolation(
                f"refusing to delete {key} (version {version}): it is under a legal hold"
            )
        if info.retention is not None and info.retention.until > self.now():
            raise RetentionViolation(
                f"refusing to delete {key} (version {version}): retained until {format_utc(info.retention.until)}"
            )
        with self._boundary("deleting", key, version, lock=True):
            self._client.delete_object(Bucket=self.bucket, Key=full, VersionId=version)

    def sweep_uploads(self, older_than: timedelta, remove: bool = True) -> builtins.list[Leftover]:
        """Unfinished multipart uploads under this store's prefix begun more than
        ``older_than`` ago (by the server's clock), aborted unless ``remove`` is False
        (``storage.s3.leftovers``)."""
        return unfinished_uploads(self, self.now(), older_than, remove)

    def now(self) -> datetime:
        """The server's time from the Date header of a HeadBucket answer (whole seconds, so up
        to one second behind); the local clock only when the server sends no Date header."""
        with self._boundary("reading the time of"):
            response = self._client.head_bucket(Bucket=self.bucket)
        header = (response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get("date")
        if header:
            try:
                return utc(parsedate_to_datetime(str(header)))
            except (TypeError, ValueError):
                pass
        return utc(self._clock())

    def lock_self_test(self) -> _Probes:
        """See ``ObjectStore.lock_self_test``. Each probe gets its own canary under ``canary/``:
        a raw PutObject with Content-MD5 and COMPLIANCE retention for ``canary_seconds`` from
        the server's time. Then the raw request is sent, bypassing this class's refusals. A
        probe counts as refused only when the server answered with an error and HeadObject
        still shows the canary version with its original lock."""
        self.sweep_canaries()
        probes: _Probes = []
        for action in ("delete-version", "shorten-retention", "switch-to-governance"):
            key = f"canary/{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"
            full = self._full_key(key)
            data = f"custody lock self-test: {action}\n".encode()
            until = whole_second_ceiling(self.now() + timedelta(seconds=self.canary_seconds))
            try:
                with self._boundary("writing the lock self-test canary", key):
                    response = self._client.put_object(
                        Bucket=self.bucket,
                        Key=full,
                        Body=data,
                        ContentMD5=b64(hashlib.md5(data).digest()),
                        Metadata={"purpose": "lock-self-test", "sha256": hashlib.sha256(data).hexdigest()},
                        ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=until,
                    )
                version = self._version_of(key, response)
            except StorageUnavailable:
                raise
            except StorageError as exc:
                raise StorageUnavailable(
                    f"the lock self-test could not write its canary {key}: {exc}"
                ) from exc
            probes.append(self._probe(action, key, full, version, until))
        return probes

    def sweep_canaries(self, limit: int = 200) -> int:
        """Delete versions of earlier self-tests' canaries (under ``canary/``, metadata
        ``purpose: lock-self-test``) whose retention the server reports as passed and that have
        no legal hold, at most ``limit``; the number deleted. Anything else is left alone, and a
        deletion the server refuses is skipped: canaries must not pile up, but nothing here may
        fail a self-test."""
        prefix = self.prefix + "canary/"
        now = self.now()
        removed = 0
        try:
            pages = self._client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for found in page.get("Versions") or ():
                    if removed >= limit:
                        return removed
                    full, version = str(found["Key"]), str(found.get("VersionId") or "")
                    if not version or version == "null":
                        continue
                    removed += self._sweep_one(full, version, now)
        except (ClientError, BotoCoreError):
            pass
        return removed

    def _sweep_one(self, full: str, version: str, now: datetime) -> int:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=full, VersionId=version)
            if (head.get("Metadata") or {}).get("purpose") != "lock-self-test":
                return 0
            retention = head_retention(head)
            if retention is None or retention.until > now or head_hold(head):
                return 0
            self._client.delete_object(Bucket=self.bucket, Key=full, VersionId=version)
        except ClientError:
            return 0
        return 1

    def _lock_headers(self, full: str, version: str) -> tuple[str, str] | None:
        """(mode, retain-until) from HeadObject's lock headers; None when the version is gone."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=full, VersionId=version)
        except ClientError as exc:
            if status_of(exc) in (404, 405) or code_of(exc) in NOT_FOUND_CODES:
                return None
            raise
        until = head.get("ObjectLockRetainUntilDate")
        return str(head.get("ObjectLockMode", "")), format_utc(until) if isinstance(until, datetime) else ""

    def _probe(self, action: str, key: str, full: str, version: str, until: datetime) -> LockProbe:
        where = f"canary {key} (version {version})"
        with self._boundary("reading the lock of", key, version):
            before = self._lock_headers(full, version)
        try:
            if action == "delete-version":
                self._client.delete_object(Bucket=self.bucket, Key=full, VersionId=version)
            else:
                earlier = until - timedelta(seconds=self.canary_seconds // 2)
                self._client.put_object_retention(
                    Bucket=self.bucket,
                    Key=full,
                    VersionId=version,
                    Retention={
                        "Mode": "GOVERNANCE" if action == "switch-to-governance" else "COMPLIANCE",
                        "RetainUntilDate": earlier if action == "shorten-retention" else until,
                    },
                )
        except ClientError as exc:
            refusal = server_message(exc)
        except BotoCoreError as exc:
            raise self._translate(exc, f"probing the lock ({action}) of", key, version) from exc
        else:
            return LockProbe(action, False, f"the server accepted the request on {where}")
        try:
            after = self._lock_headers(full, version)
        except (ClientError, BotoCoreError) as exc:
            detail = f"{where} could not be re-read ({type(exc).__name__})"
            return LockProbe(action, False, f"the server answered {refusal}; {detail}")
        if after is None:
            return LockProbe(action, False, f"the server answered {refusal} but {where} is gone")
        if after != before:
            change = f"the lock of {where} changed from {before} to {after}"
            return LockProbe(action, False, f"the server answered {refusal} but {change}")
        return LockProbe(action, True, f"refused by the server ({refusal}) on {where}")




def _object_metadata(sha256: str, metadata: Mapping[str, str] | None) -> dict[str, str]:
    """``x-amz-meta-*`` fields: ``sha256`` plus the caller's, with names S3 keeps verbatim."""
    result: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not _METADATA_NAME.match(name) or name == "sha256":
            raise StorageError(
                f"invalid metadata name {name!r}: use lowercase letters, digits, '-' and '_' "
                "('sha256' is reserved)"
            )
        if not value.isascii() or not value.isprintable():
            raise StorageError(f"metadata {name!r} must be printable ASCII")
        result[name] = value
    result["sha256"] = sha256
    return result

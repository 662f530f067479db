"""S3 Object Lock backend: AWS S3, Ceph RGW, MinIO and other S3-compatible servers.

Retention and legal holds are enforced by the server (``capabilities.worm == "server"``), which
``lock_self_test`` checks for itself instead of trusting the API's acceptance of a lock.

What is validated on ``put``, and by whom:

* Upload requests are signed together with the SHA-256 of their body (SigV4's
  ``x-amz-content-sha256``), and the server refuses a body whose SHA-256 differs
  (``XAmzContentSHA256Mismatch``): AWS S3, MinIO and Ceph RGW do, and ``validates_payload_sha256``
  checks once per store that this server does. When this module already has that SHA-256 (the
  declared digest of a whole object, a part's digest from an upload plan or computed for
  ``x-amz-checksum-sha256``), the request is signed with it (the ``custody-s3v4`` signer)
  instead of botocore reading and hashing the body once more. With ``flexible_checksums`` the
  same digest also goes into ``x-amz-checksum-sha256`` (validated and kept by AWS S3; Ceph RGW
  16 accepts and ignores it).
* Objects up to ``multipart_threshold`` (default 5 GiB, the most one PutObject may carry) go up
  in one PutObject carrying the retention and hold headers and signed with the declared SHA-256:
  the server stores the object only if the bytes it received have that SHA-256, and a PutObject
  is stored whole or not at all. Up to ``in_memory_limit`` (64 MiB) the object is read into
  memory first, and the client compares its size and SHA-256 with the declared ones before
  anything is sent (a version that landed under COMPLIANCE retention could never be removed
  again); it also carries ``Content-MD5``, which every S3 server validates. Above that it is
  streamed from the source, and only to a server that validates payload hashes; with any
  other server such an object goes multipart.
* Larger objects go up as a multipart upload, ``max_workers`` parts at a time, with at most
  ``max_workers + 2`` part buffers in memory whatever the object's size. Retention and legal
  hold are requested on CreateMultipartUpload and, because some servers (Ceph RGW) silently
  ignore them there, applied again with PutObjectRetention / PutObjectLegalHold after
  completion. On any error and on KeyboardInterrupt the upload is aborted, so no object is
  completed.

  - With an upload plan (``plan_upload``, fed by the caller's hash pass with the very bytes
    whose SHA-256 is declared): the plan holds every part's SHA-256, and also its MD5 when the
    server does not validate payload hashes. Each part is sent with those digests and nothing
    is hashed during the upload: the server refuses any part whose bytes are not the ones the
    hash pass saw (a file changed between the two reads, a part corrupted on the way), so the
    completed object is exactly the hashed bytes, whose SHA-256 is the declared one.
  - Without a plan: parts are read once, in order; each carries ``Content-MD5`` (the server
    refuses a part whose bytes differ: ``BadDigest``) and, with ``flexible_checksums``, its
    SHA-256 (also signed as its payload hash). The client hashes the whole stream while reading
    it and compares size and SHA-256 with the declared ones before CompleteMultipartUpload.
* Finally a fresh ``stat`` must show the size, the SHA-256 recorded in ``x-amz-meta-sha256``, a
  version id, a retention of the requested mode lasting at least until the requested date, and
  the legal hold; anything weaker raises ``StoreMisconfigured`` (see ``confirm_stored``).

Every botocore exception is turned into a ``storage.errors`` class at this module's boundary;
no message carries credentials. Credentials come only from boto3's standard chain (environment,
shared files, profiles, instance or container roles), never from the store URL.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO, Literal, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from storage.base import Capabilities, LockProbe, ObjectInfo, ProgressCallback, Retention
from storage.errors import (
    IntegrityRejected,
    ObjectExists,
    ObjectNotFound,
    RetentionViolation,
    StorageError,
    StorageUnavailable,
    StoreMisconfigured,
)

MiB = 1 << 20
DEFAULT_MULTIPART_THRESHOLD = 5 * 1024 * MiB
"""Objects up to this size go up in one PutObject (the most S3 allows), the server checking the
whole object's SHA-256; larger ones as a multipart upload of parallel parts."""
IN_MEMORY_LIMIT = 64 * MiB
"""Objects up to this size (and ``multipart_threshold``) are read into memory and checked
before they are sent; larger single PutObjects are streamed from the source."""
DEFAULT_PART_SIZE = 16 * MiB
MIN_PART_SIZE = 5 * MiB
"""S3's smallest allowed part (all but the last); Ceph RGW enforces the same by default."""
MAX_PARTS = 10_000
DEFAULT_WORKERS = 4
URL_PARAMETERS = ("endpoint_url", "region", "multipart_threshold_mib", "part_size_mib", "workers", "flexible_checksums")
_TUNING = {
    "multipart_threshold_mib": ("multipart_threshold", 1, 5 * 1024, MiB),
    "part_size_mib": ("part_size", 5, 5 * 1024, MiB),
    "workers": ("max_workers", 1, 64, 1),
}
"""URL parameter -> (constructor option, smallest, largest, unit in bytes)."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_METADATA_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CREDENTIAL_WORDS = ("secret", "access", "token", "password", "credential", "session", "key_id")
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "InvalidClientTokenId",
        "RequestTimeTooSkewed",
    }
)
_INTEGRITY_CODES = frozenset(
    {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "IncompleteBody", "InvalidChecksum"}
)
_NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_BUSY_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable", "InternalError"}
)

S3Client = Any
"""A boto3 S3 client (boto3 ships no type information)."""
_CompletedParts = list[dict[str, Any]]
_Probes = list[LockProbe]

_KNOWN_PAYLOAD_PARAMETER = "CustodyPayloadSHA256"
"""A request parameter of this module's own, taken out before botocore builds the request: the
hex SHA-256 of the body, signed as ``x-amz-content-sha256`` instead of hashing the body again."""
_KNOWN_PAYLOAD_CONTEXT = "custody_payload_sha256"
_KNOWN_PAYLOAD_SIGNER = "custody-s3v4"
_PAYLOAD_MISMATCH_CODES = frozenset({"XAmzContentSHA256Mismatch"})
_signer_registration = threading.Lock()
_T = TypeVar("_T")


def _head_retention(head: Mapping[str, Any]) -> Retention | None:
    """The retention HeadObject reported (``x-amz-object-lock-mode`` and ``-retain-until-date``),
    or None when it reported none."""
    mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    if mode not in ("COMPLIANCE", "GOVERNANCE") or not isinstance(until, datetime):
        return None
    return Retention(cast(Literal["COMPLIANCE", "GOVERNANCE"], mode), _utc(until))


def _head_hold(head: Mapping[str, Any]) -> bool | None:
    """The legal hold HeadObject reported (``x-amz-object-lock-legal-hold``), or None."""
    status = head.get("ObjectLockLegalHoldStatus")
    return None if status not in ("ON", "OFF") else status == "ON"


def _register_known_payload_signer() -> None:
    """Register ``custody-s3v4`` with botocore: S3's SigV4 signer, except that a body whose
    SHA-256 is already known is signed with that digest rather than read and hashed once more.
    The server hashes what it receives and refuses a mismatch, so a wrong digest given to it can
    only make a request fail, never pass. (botocore is imported here, not with this module, so
    that a store can be made on a background thread.)"""
    import botocore.auth

    with _signer_registration:
        if _KNOWN_PAYLOAD_SIGNER in botocore.auth.AUTH_TYPE_MAPS:
            return

        class KnownPayloadAuth(botocore.auth.S3SigV4Auth):
            def payload(self, request: Any) -> str:
                known = request.context.get(_KNOWN_PAYLOAD_CONTEXT)
                trailer = getattr(self, "_is_streaming_checksum_payload", None)
                if known and not (trailer is not None and trailer(request)):
                    return str(known)
                return super().payload(request)

        botocore.auth.AUTH_TYPE_MAPS[_KNOWN_PAYLOAD_SIGNER] = KnownPayloadAuth


def _take_known_payload(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    known = params.pop(_KNOWN_PAYLOAD_PARAMETER, None)
    if known is not None:
        context[_KNOWN_PAYLOAD_CONTEXT] = known


def _choose_known_payload_signer(context: dict[str, Any], signature_version: Any, **kwargs: Any) -> Any:
    """For a request whose payload SHA-256 is known: the signer botocore's own handlers would
    choose, with S3's SigV4 replaced by ``custody-s3v4``. Other requests: no opinion."""
    if not context.get(_KNOWN_PAYLOAD_CONTEXT):
        return None
    import botocore.handlers

    chosen = None
    for name in ("set_operation_specific_signer", "_set_auth_scheme_preference_signer"):
        choice = getattr(botocore.handlers, name, None)
        chosen = choice(context=context, signature_version=signature_version, **kwargs) if choice else None
        if chosen is not None:
            break
    chosen = signature_version if chosen is None else chosen
    return _KNOWN_PAYLOAD_SIGNER if chosen == "s3v4" else chosen


def _sign_known_payloads(client: S3Client) -> None:
    """Let ``client`` sign bodies whose SHA-256 is given as ``_KNOWN_PAYLOAD_PARAMETER``."""
    _register_known_payload_signer()
    events = client.meta.events
    events.register("before-parameter-build.s3", _take_known_payload, unique_id="custody-known-payload")
    events.register("choose-signer.s3", _choose_known_payload_signer, unique_id="custody-known-payload-signer")


def _in_background(name: str, work: Callable[[], _T]) -> Future[_T]:
    """Run ``work`` on a daemon thread at a lower priority (Linux: nice is per thread), so that
    it fills time the caller leaves idle (e.g. while a file is hashed) instead of slowing it."""
    future: Future[_T] = Future()

    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to whoever waits for the result
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


class UploadPlan:
    """The per-part digests of one multipart upload, computed from the bytes of the caller's hash
    pass: ``write`` is given every chunk of the object, in order (``hash_stream``'s sink, on its
    own thread), and splits them at part boundaries. Made by ``S3Store.plan_upload``; used by
    ``S3Store.put(..., plan=...)``, which then sends each part with these digests and hashes
    nothing itself."""

    def __init__(self, size: int, part_size: int, md5: bool) -> None:
        self.size = size
        self.part_size = part_size
        self.count = max(1, math.ceil(size / part_size))
        self.received = 0
        self.sha256: list[bytes] = []
        self.md5: list[bytes] | None = [] if md5 else None
        self._sha = hashlib.sha256()
        self._md5 = hashlib.md5() if md5 else None
        self._filled = 0

    def write(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        while len(view):
            piece = view[: self.part_size - self._filled]
            self._sha.update(piece)
            if self._md5 is not None:
                self._md5.update(piece)
            self._filled += len(piece)
            self.received += len(piece)
            if self._filled == self.part_size:
                self._close_part()
            view = view[len(piece) :]

    def _close_part(self) -> None:
        self.sha256.append(self._sha.digest())
        self._sha = hashlib.sha256()
        if self.md5 is not None and self._md5 is not None:
            self.md5.append(self._md5.digest())
            self._md5 = hashlib.md5()
        self._filled = 0

    def finish(self) -> None:
        """Close the last part; raise unless exactly ``size`` bytes made ``count`` parts."""
        if self._filled or not self.sha256:
            self._close_part()
        if self.received != self.size or len(self.sha256) != self.count:
            raise IntegrityRejected(
                f"the upload plan covers {self.received} bytes in {len(self.sha256)} parts, not "
                f"the {self.size} bytes declared; nothing was sent"
            )


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def whole_second_ceiling(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole second: S3 servers keep retain-until dates to the second
    (Ceph RGW truncates fractions), so a fractional date would come back earlier than asked."""
    moment = _utc(moment)
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "") or "")


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _server_message(exc: ClientError) -> str:
    code = _code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "") or "")
    status = _status(exc)
    text = code if code and code != str(status) else f"HTTP {status}"
    return f"{text}: {message}" if message else text


def _descriptor(source: BinaryIO) -> int | None:
    """The file descriptor of a seekable source (a regular file), else None."""
    try:
        descriptor = source.fileno()
        source.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return descriptor if source.seekable() else None


def _pread_exactly(descriptor: int, count: int, offset: int) -> bytes:
    """``count`` bytes at ``offset``, fewer only at end of file (short reads are retried)."""
    first = os.pread(descriptor, count, offset)
    if len(first) == count or not first:
        return first
    pieces = [first]
    got = len(first)
    while got < count:
        piece = os.pread(descriptor, count - got, offset + got)
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


def _read_up_to(source: BinaryIO, count: int) -> bytes:
    """Read ``count`` bytes, fewer only at end of stream (short reads are retried)."""
    first = source.read(count)
    if len(first) == count or not first:
        return bytes(first)
    pieces = [first]
    missing = count - len(first)
    while missing:
        piece = source.read(missing)
        if not piece:
            break
        pieces.append(piece)
        missing -= len(piece)
    return b"".join(pieces)


def confirm_stored(
    info: ObjectInfo,
    *,
    retention: Retention,
    legal_hold: bool,
    size: int | None = None,
    sha256: str | None = None,
) -> None:
    """Check that a stored version is what a put asked for, as a fresh ``stat`` reports it.

    A version id must be present; the retention must be in ``retention.mode`` and last at least
    until ``retention.until`` rounded up to a whole second (later is fine, e.g. a bucket default);
    a legal hold must be on when asked. A weaker lock raises ``StoreMisconfigured``: the server
    accepted the request without keeping the promise. A different size or SHA-256 raises
    ``StorageError``: the version exists, so it is not reported as ``IntegrityRejected``.
    """
    where = f"{info.key} (version {info.version or 'none'})"
    if size is not None and info.size != size:
        raise StorageError(
            f"the store reports {info.size} bytes for {where} but {size} were sent; the version "
            "stays as stored (an audit will list it); check the server before ingesting more"
        )
    if sha256 is not None and info.sha256 != sha256.lower():
        raise StorageError(
            f"the store reports SHA-256 {info.sha256} for {where} but {sha256.lower()} was sent"
        )
    if not info.version:
        raise StoreMisconfigured(
            f"the store returned no version id for {where}: bucket versioning is off, so Object "
            "Lock cannot protect it; use a bucket created with Object Lock enabled"
        )
    wanted = whole_second_ceiling(retention.until)
    problems: list[str] = []
    if info.retention is None:
        problems.append("it has no retention at all")
    else:
        if info.retention.mode != retention.mode:
            problems.append(f"its retention mode is {info.retention.mode}, not {retention.mode}")
        if info.retention.until < wanted:
            problems.append(
                f"it is retained until {_iso(info.retention.until)}, earlier than {_iso(wanted)}"
            )
    if legal_hold and not info.legal_hold:
        problems.append("the legal hold is not on")
    if problems:
        raise StoreMisconfigured(
            f"the store accepted {where} but its lock is weaker than asked: "
            + "; ".join(problems)
            + ". The server does not enforce Object Lock as requested: do not use it for evidence"
        )


def make_client(
    endpoint_url: str | None = None,
    region: str | None = None,
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_attempts: int = 5,
    retry_mode: Literal["standard", "adaptive"] = "standard",
    max_pool_connections: int = 10,
) -> S3Client:
    """The S3 client ``S3Store`` uses, made with botocore directly (boto3 adds nothing a client
    needs, only import time): credentials from the standard chain only (botocore's, which boto3
    and the AWS CLI use), path-style addressing when ``endpoint_url`` is given, bounded connect/read timeouts,
    botocore's ``retry_mode`` retries (throttling, 5xx, connection errors) up to
    ``max_attempts`` attempts in all, and checksums only where an operation requires one
    (boto3's default aws-chunked trailers break on servers such as Ceph RGW over HTTPS)."""
    import botocore.session
    from botocore.config import Config

    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config
    )


class S3Store:
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
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
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
                _sign_known_payloads(made)
                return made

            self._making = _in_background("s3-client", build)
        else:
            _sign_known_payloads(client)
            self._made = client

    @property
    def _client(self) -> S3Client:
        """The boto3-compatible client. Importing botocore and building the client take a few
        tenths of a second, spent on a background thread from the constructor on; the first
        request waits for it. A client that could not be built raises ``StorageUnavailable``."""
        if self._made is None:
            assert self._making is not None
            try:
                self._made = self._making.result()
            except (BotoCoreError, ValueError) as exc:
                raise StorageUnavailable(
                    f"cannot set up an S3 client for {self._location()}: {type(exc).__name__}: {exc}"
                ) from exc
        return self._made

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Store:
        """Build a store from ``s3://bucket[/prefix][?endpoint_url=...&region=...]``.

        Credentials are refused in the URL (user info or credential-like parameters): they come
        only from boto3's standard chain. Unknown parameters are refused too. ``options`` are
        passed to the constructor.
        """
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise StorageError(
                "an S3 store URL starts with s3://, "
                "e.g. s3://bucket/prefix?endpoint_url=http://127.0.0.1:7480"
            )
        if "@" in parts.netloc:
            raise StorageError(_CREDENTIALS_IN_URL)
        bucket = parts.netloc
        if not bucket:
            raise StorageError("the S3 store URL names no bucket: use s3://bucket[/prefix]")
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError as exc:
            raise StorageError("the S3 store URL has a malformed query string") from exc
        if any(word in name.lower() for name in query for word in _CREDENTIAL_WORDS):
            raise StorageError(_CREDENTIALS_IN_URL)
        unknown = sorted(set(query) - set(URL_PARAMETERS))
        if unknown:
            raise StorageError(
                f"unknown S3 store URL parameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(URL_PARAMETERS)}"
            )
        repeated = sorted(name for name, values in query.items() if len(values) > 1)
        if repeated:
            raise StorageError(f"S3 store URL parameter(s) given more than once: {', '.join(repeated)}")
        endpoint = query.get("endpoint_url", [None])[0] or None
        region = query.get("region", [None])[0] or None
        if endpoint is not None:
            endpoint_parts = urlsplit(endpoint)
            if "@" in endpoint_parts.netloc:
                raise StorageError(_CREDENTIALS_IN_URL)
            if endpoint_parts.scheme not in ("http", "https") or not endpoint_parts.hostname:
                raise StorageError(
                    "endpoint_url must be an http:// or https:// URL such as http://127.0.0.1:7480"
                )
        tuning: dict[str, Any] = {}
        for name, (option, low, high, unit) in _TUNING.items():
            if name in query:
                text = query[name][0]
                if not text.isdigit() or not low <= int(text) <= high:
                    raise StorageError(f"S3 store URL parameter {name} must be a whole number from {low} to {high}")
                tuning[option] = int(text) * unit
        if "flexible_checksums" in query:
            flag = query["flexible_checksums"][0].lower()
            if flag not in ("true", "false"):
                raise StorageError("S3 store URL parameter flexible_checksums must be true or false")
            tuning["flexible_checksums"] = flag == "true"
        return cls(bucket, unquote(parts.path), endpoint_url=endpoint, region=region, **{**tuning, **options})

    # ---- naming and errors ------------------------------------------------------------------

    def _endpoint(self) -> str:
        if self.endpoint_url:
            return self.endpoint_url
        client = getattr(self, "_made", None)  # never waits: this names places in error messages
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
        return str(endpoint) if endpoint else "the default AWS S3 endpoint"

    def _location(self) -> str:
        path = f"/{self.prefix.rstrip('/')}" if self.prefix else ""
        return f"s3://{self.bucket}{path} at {self._endpoint()}"

    def describe(self) -> str:
        return self._location()

    def __repr__(self) -> str:
        return f"S3Store({self._location()!r})"

    def _full_key(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"invalid object key {key!r}")
        full = self.prefix + key
        if len(full.encode("utf-8")) > 1024:
            raise StorageError(f"object key too long for S3 (over 1024 bytes): {key!r}")
        return full

    def _translate(
        self,
        exc: Exception,
        action: str,
        key: str | None = None,
        version: str | None = None,
        lock: bool = False,
    ) -> StorageError:
        """The ``storage.errors`` instance for a botocore exception raised while ``action``.

        ``key`` makes 404s mean ``ObjectNotFound``; ``lock`` makes 403s mean the server refused
        on account of retention or a legal hold.
        """
        what = f"{key} (version {version})" if key and version else (key or f"bucket {self.bucket}")
        where = self._location()
        if isinstance(exc, ClientError):
            code, status, detail = _code(exc), _status(exc), _server_message(exc)
            if code == "NoSuchBucket":
                return StorageUnavailable(
                    f"bucket {self.bucket} does not exist at {self._endpoint()} ({action} {what}); "
                    "fix the store URL, or create the bucket with Object Lock enabled "
                    f"(aws s3api create-bucket --bucket {self.bucket} --object-lock-enabled-for-bucket)"
                )
            if code in _CREDENTIAL_CODES:
                return StorageUnavailable(
                    f"the S3 endpoint {self._endpoint()} rejected the credentials ({detail}) while "
                    f"{action} {what} in bucket {self.bucket}; check AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials (boto3's standard "
                    "chain)" + (" and this machine's clock" if code == "RequestTimeTooSkewed" else "")
                )
            if code in _INTEGRITY_CODES:
                return IntegrityRejected(
                    f"the server refused the bytes of {what} ({detail}): they do not match the "
                    f"digest sent with them; nothing was stored under {what}"
                )
            if code == "PreconditionFailed" or status == 412:
                return ObjectExists(key or what)
            if key is not None and (code in _NOT_FOUND_CODES or status in (404, 405)):
                return ObjectNotFound(key, version)
            if code in _NO_LOCK_CODES or (code == "InvalidRequest" and "lock" in detail.lower()):
                return StoreMisconfigured(f"{_no_lock_message(self.bucket, self._endpoint())} ({detail})")
            if code == "AccessDenied" or status == 403:
                if lock:
                    return RetentionViolation(
                        f"the server refused {action} {what}: {detail} (retention or legal hold)"
                    )
                return StorageUnavailable(
                    f"access denied ({detail}) while {action} {what} in {where}; check the "
                    "credentials and that their policy allows this operation on the bucket"
                )
            if code in _BUSY_CODES or status >= 500:
                return StorageUnavailable(
                    f"the S3 server {self._endpoint()} failed ({detail}) while {action} {what} "
                    f"after {self.max_attempts} attempts; try again later"
                )
            return StorageError(f"the S3 server {self._endpoint()} refused {action} {what}: {detail}")
        if isinstance(exc, BotoCoreError):
            name = type(exc).__name__
            if "Credential" in name or name == "ProfileNotFound":
                return StorageUnavailable(
                    f"no usable S3 credentials for {where} ({name}); set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials"
                )
            return StorageUnavailable(
                f"cannot reach the S3 endpoint {self._endpoint()} (bucket {self.bucket}) while "
                f"{action} {what}: {name} after up to {self.max_attempts} attempts; check the "
                "endpoint URL, the network and that the server is running"
            )
        return StorageUnavailable(f"I/O error while {action} {what} in {where}: {exc}")

    @contextmanager
    def _boundary(
        self, action: str, key: str | None = None, version: str | None = None, lock: bool = False
    ) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, action, key, version, lock) from exc

    # ---- bucket -----------------------------------------------------------------------------

    def ensure_bucket(self, create: bool = False, default_retention_days: int = 90) -> None:
        """Check that the bucket exists, has Object Lock enabled and versioning on.

        With ``create``, a missing bucket is created with Object Lock (which turns versioning on)
        and a default COMPLIANCE retention of ``default_retention_days`` days (0: no default);
        an existing bucket's configuration is never changed. A bucket without Object Lock raises
        ``StoreMisconfigured``; a missing bucket (without ``create``), rejected credentials or an
        unreachable endpoint raise ``StorageUnavailable``.
        """
        try:
            lock = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) == "NoSuchBucket" and create:
                self._create_bucket(default_retention_days)
                self.ensure_bucket(create=False)
                return
            if _code(exc) in _NO_LOCK_CODES or (
                _code(exc) == "InvalidRequest" and "lock" in _server_message(exc).lower()
            ):
                raise StoreMisconfigured(_no_lock_message(self.bucket, self._endpoint())) from exc
            raise self._translate(exc, "checking Object Lock on") from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "checking Object Lock on") from exc
        enabled = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise StoreMisconfigured(_no_lock_message(self.bucket, self._endpoint()))
        with self._boundary("checking versioning on"):
            versioning = self._client.get_bucket_versioning(Bucket=self.bucket)
        if versioning.get("Status") != "Enabled":
            raise StoreMisconfigured(
                f"bucket {self.bucket} at {self._endpoint()} has Object Lock but versioning is "
                f"{versioning.get('Status', 'off')}; enable versioning on it "
                f"(aws s3api put-bucket-versioning --bucket {self.bucket} "
                "--versioning-configuration Status=Enabled)"
            )
        self._lock_checked = True

    def _create_bucket(self, default_retention_days: int) -> None:
        params: dict[str, Any] = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
        region = self.region or getattr(self._client.meta, "region_name", None)
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**params)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou",):
                raise self._translate(exc, "creating") from exc
            return
        except BotoCoreError as exc:
            raise self._translate(exc, "creating") from exc
        if default_retention_days > 0:
            with self._boundary("setting the default retention of"):
                self._client.put_object_lock_configuration(
                    Bucket=self.bucket,
                    ObjectLockConfiguration={
                        "ObjectLockEnabled": "Enabled",
                        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": default_retention_days}},
                    },
                )

    def _require_lock(self) -> None:
        if not self._lock_checked:
            self.ensure_bucket(create=False)

    # ---- put --------------------------------------------------------------------------------

    def validates_payload_sha256(self) -> bool:
        """Whether the server refuses an upload whose body does not have the SHA-256 it was
        signed with (``x-amz-content-sha256``). Found out once per store by a probe that stores
        nothing: a multipart upload under ``canary/`` is sent one small part signed with the
        SHA-256 of other bytes, then aborted. True only when the server refused that part with
        ``XAmzContentSHA256Mismatch``; anything else (the part accepted, another error, no
        answer) counts as no, and upload plans then hold each part's MD5 as well."""
        with self._payload_probe:
            if self._payload_checked is None:
                self._payload_checked = self._probe_payload_validation()
            return self._payload_checked

    def _payload_validated_soon(self) -> None:
        """Start ``validates_payload_sha256`` on a background thread, if not done or started."""
        with self._payload_probe:
            if self._payload_checked is None and self._payload_soon is None:
                self._payload_soon = _in_background("s3-payload-probe", self.validates_payload_sha256)

    def _probe_payload_validation(self) -> bool:
        full = self._full_key(f"canary/payload-sha256-{uuid.uuid4().hex[:12]}")
        data = b"custody: a part signed with the SHA-256 of other bytes, to be refused\n"
        try:
            upload_id = str(self._client.create_multipart_upload(Bucket=self.bucket, Key=full)["UploadId"])
        except (ClientError, BotoCoreError):
            return False
        try:
            self._client.upload_part(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                PartNumber=1,
                Body=data,
                ContentLength=len(data),
                **{_KNOWN_PAYLOAD_PARAMETER: hashlib.sha256(data + b"?").hexdigest()},
            )
        except ClientError as exc:
            return _code(exc) in _PAYLOAD_MISMATCH_CODES
        except BotoCoreError:
            return False
        finally:
            self._abort_upload(full, upload_id)
        return False

    def plan_upload(self, size: int) -> UploadPlan | None:
        """An ``UploadPlan`` for an object of ``size`` bytes that ``put`` will send as a
        multipart upload; None for one it will send whole, whose declared SHA-256 is all the
        server needs to check it. The caller gives the plan every byte whose SHA-256 it will
        declare, in order (``hash_stream``'s sink), then passes it to ``put``. The plan
        computes each part's SHA-256, and its MD5 too when the server does not validate payload
        hashes (``validates_payload_sha256``, probed the first time it matters)."""
        if size <= self.multipart_threshold:
            if size > self.in_memory_limit:
                self._payload_validated_soon()  # put needs to know; find out while the caller hashes
            return None
        return UploadPlan(size, self._part_size_for(size), md5=not self.validates_payload_sha256())

    def _multipart(self, size: int) -> bool:
        """Whether ``put`` sends ``size`` bytes as a multipart upload: above
        ``multipart_threshold``, and above ``in_memory_limit`` when the server does not validate
        payload hashes (a streamed PutObject could not be checked before it is stored)."""
        if size <= min(self.multipart_threshold, self.in_memory_limit):
            return False
        return size > self.multipart_threshold or not self.validates_payload_sha256()

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

    def _refuse_existing(self, key: str, full: str) -> None:
        try:
            self._client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) in _NOT_FOUND_CODES:
                return
            raise self._translate(exc, "checking for an existing", key) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "checking for an existing", key) from exc
        raise ObjectExists(key)

    def _lock_parameters(self, retention: Retention, legal_hold: bool) -> dict[str, Any]:
        params: dict[str, Any] = {
            "ObjectLockMode": retention.mode,
            "ObjectLockRetainUntilDate": retention.until,
        }
        if legal_hold:
            params["ObjectLockLegalHoldStatus"] = "ON"
        return params

    def _put_single(
        self,
        key: str,
        full: str,
        source: BinaryIO,
        size: int,
        sha256: str,
        retention: Retention,
        legal_hold: bool,
        metadata: dict[str, str],
    ) -> str:
        data = _read_up_to(source, size + 1)
        found = hashlib.sha256(data).hexdigest()
        if len(data) != size or found != sha256:
            raise IntegrityRejected(
                f"the source of {key} gave {'more than ' if len(data) > size else ''}"
                f"{min(len(data), size)} bytes with SHA-256 {found}, but {size} bytes with SHA-256 "
                f"{sha256} were declared; nothing was sent (was the file changed while it was read?)"
            )
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": full,
            "Body": data,
            "ContentLength": size,
            "ContentMD5": _b64(hashlib.md5(data).digest()),
            "Metadata": metadata,
            "IfNoneMatch": "*",
            _KNOWN_PAYLOAD_PARAMETER: sha256,
            **self._lock_parameters(retention, legal_hold),
        }
        if self.flexible_checksums:
            params["ChecksumSHA256"] = _b64(bytes.fromhex(sha256))
        with self._boundary("storing", key):
            response = self._client.put_object(**params)
        return self._version_of(key, response)

    def _put_stream(
        self,
        key: str,
        full: str,
        source: BinaryIO,
        size: int,
        sha256: str,
        retention: Retention,
        legal_hold: bool,
        metadata: dict[str, str],
        progress: ProgressCallback | None,
    ) -> str:
        """One PutObject streamed from ``source`` and signed with the declared SHA-256 as its
        payload hash: the server (which validates payload hashes, see ``_multipart``) stores
        the object only if the bytes it received have that SHA-256, and a PutObject is stored
        whole or not at all. The lock headers go with it when ``x-amz-checksum-sha256`` does
        (AWS S3 requires a checksum on a locked PutObject, and Ceph RGW honours lock headers on
        PutObject); otherwise the lock is applied afterwards. ``put``'s final ``stat`` confirms
        it either way."""
        body = _SourceSpan(source, size, key, progress, step=self.part_size)
        available = body.available()
        if available != size:
            raise IntegrityRejected(
                f"the source of {key} has {'more than' if available > size else 'only'} "
                f"{min(available, size)} of the {size} bytes declared; nothing was sent"
            )
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": full,
            "Body": body,
            "ContentLength": size,
            "Metadata": metadata,
            "IfNoneMatch": "*",
            _KNOWN_PAYLOAD_PARAMETER: sha256,
        }
        if self.flexible_checksums:
            params["ChecksumSHA256"] = _b64(bytes.fromhex(sha256))
            params.update(self._lock_parameters(retention, legal_hold))
        try:
            with self._boundary("storing", key):
                response = self._client.put_object(**params)
        except StorageError as exc:
            # the source ended early while botocore sent it: botocore reports that (after its
            # retries) as an HTTP client error carrying the body's own exception
            ended = getattr(exc.__cause__, "kwargs", {}).get("error")
            if isinstance(ended, IntegrityRejected):
                raise ended from exc
            raise
        version = self._version_of(key, response)
        body.report()
        if not self.flexible_checksums:
            self._lock_completed(key, full, version, retention, legal_hold)
        return version

    def _version_of(self, key: str, response: Mapping[str, Any]) -> str:
        version = response.get("VersionId")
        if not version or version == "null":
            raise StoreMisconfigured(
                f"the store kept {key} without a version id: versioning is off on bucket "
                f"{self.bucket}, so Object Lock cannot protect it; use a bucket created with "
                "Object Lock enabled"
            )
        return str(version)

    def _part_size_for(self, size: int) -> int:
        needed = math.ceil(size / MAX_PARTS)
        return max(self.part_size, math.ceil(needed / MiB) * MiB)

    def _put_multipart(
        self,
        key: str,
        full: str,
        source: BinaryIO,
        size: int,
        sha256: str,
        retention: Retention,
        legal_hold: bool,
        metadata: dict[str, str],
        progress: ProgressCallback | None,
        plan: UploadPlan | None,
    ) -> str:
        self._abort_leftover_uploads(key, full)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": full,
            "Metadata": metadata,
            **self._lock_parameters(retention, legal_hold),
        }
        if self.flexible_checksums:
            params["ChecksumAlgorithm"] = "SHA256"
        with self._boundary("starting the multipart upload of", key):
            upload_id = str(self._client.create_multipart_upload(**params)["UploadId"])
        try:
            parts = self._send_parts(key, full, upload_id, source, size, sha256, progress, plan)
            with self._boundary("completing the multipart upload of", key):
                response = self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                )
        except BaseException as exc:
            problem = self._abort_upload(full, upload_id)
            if problem and isinstance(exc, StorageError):
                exc.args = (f"{exc}; {problem}",)
            raise
        version = self._version_of(key, response)
        self._lock_completed(key, full, version, retention, legal_hold)
        return version

    def _send_parts(
        self,
        key: str,
        full: str,
        upload_id: str,
        source: BinaryIO,
        size: int,
        sha256: str,
        progress: ProgressCallback | None,
        plan: UploadPlan | None,
    ) -> _CompletedParts:
        """Send every part, ``max_workers`` at a time; return them for completion.

        Without a plan the parts are read here, in order, and the whole stream is hashed and
        compared with ``sha256``. With a plan nothing is hashed; a source with a file descriptor
        is read by the sending threads (``os.pread``), so only parts being sent are in memory."""
        part_size = plan.part_size if plan is not None else self._part_size_for(size)
        count = max(1, math.ceil(size / part_size))
        descriptor = _descriptor(source) if plan is not None else None
        start = source.tell() if descriptor is not None else 0
        whole = hashlib.sha256() if plan is None else None
        done_parts: dict[int, dict[str, Any]] = {}
        window = self.max_workers + 1
        pending: set[Future[tuple[dict[str, Any], int]]] = set()

        def ended_early(read: int) -> IntegrityRejected:
            return IntegrityRejected(
                f"the source of {key} ended after {read} bytes but {size} were declared; "
                "the multipart upload was aborted and nothing was stored"
            )

        def send(number: int, data: bytes | None) -> tuple[dict[str, Any], int]:
            offset = (number - 1) * part_size
            length = min(part_size, size - offset)
            if data is None:
                assert descriptor is not None
                data = _pread_exactly(descriptor, length, start + offset)
                if len(data) != length:
                    raise ended_early(offset + len(data))
            digests = None
            if plan is not None:
                digests = (plan.sha256[number - 1], plan.md5[number - 1] if plan.md5 is not None else None)
            return self._upload_part(key, full, upload_id, number, data, digests)

        def collect(finished: set[Future[tuple[dict[str, Any], int]]]) -> None:
            for future in finished:
                part, length = future.result()
                done_parts[int(part["PartNumber"])] = part
                if progress is not None:
                    progress(length)

        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="s3-part")
        try:
            sent = 0
            for number in range(1, count + 1):
                data: bytes | None = None
                if descriptor is None:
                    length = min(part_size, size - (number - 1) * part_size)
                    data = _read_up_to(source, length)
                    if whole is not None:
                        whole.update(data)
                    sent += len(data)
                    if len(data) != length:
                        raise ended_early(sent)
                while len(pending) >= window:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(finished)
                pending.add(pool.submit(send, number, data))
                del data
            more = os.pread(descriptor, 1, start + size) if descriptor is not None else source.read(1)
            if more:
                raise IntegrityRejected(
                    f"the source of {key} has more than the {size} bytes declared; the multipart "
                    "upload was aborted and nothing was stored"
                )
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(finished)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if whole is not None and whole.hexdigest() != sha256:
            raise IntegrityRejected(
                f"the {size} bytes read from the source of {key} have SHA-256 {whole.hexdigest()}, "
                f"not the declared {sha256}; the multipart upload was aborted and nothing was "
                "stored (was the file changed while it was read?)"
            )
        return [done_parts[number] for number in sorted(done_parts)]

    def _upload_part(
        self,
        key: str,
        full: str,
        upload_id: str,
        number: int,
        data: bytes,
        digests: tuple[bytes, bytes | None] | None,
    ) -> tuple[dict[str, Any], int]:
        """One UploadPart. ``digests`` (SHA-256, MD5 or None) come from an upload plan; without
        them the part's MD5 is computed here, and its SHA-256 when ``flexible_checksums`` is on.
        A known SHA-256 is both signed as the payload hash and, with ``flexible_checksums``,
        sent as ``x-amz-checksum-sha256``; a known MD5 is sent as ``Content-MD5``."""
        sha: bytes | None
        md5: bytes | None
        if digests is not None:
            sha, md5 = digests
        else:
            md5 = hashlib.md5(data).digest()
            sha = hashlib.sha256(data).digest() if self.flexible_checksums else None
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": full,
            "UploadId": upload_id,
            "PartNumber": number,
            "Body": data,
            "ContentLength": len(data),
        }
        part: dict[str, Any] = {"PartNumber": number}
        if md5 is not None:
            params["ContentMD5"] = _b64(md5)
        if sha is not None:
            params[_KNOWN_PAYLOAD_PARAMETER] = sha.hex()
            if self.flexible_checksums:
                params["ChecksumSHA256"] = part["ChecksumSHA256"] = _b64(sha)
        with self._boundary(f"uploading part {number} of", key):
            response = self._client.upload_part(**params)
        part["ETag"] = response["ETag"]
        return part, len(data)

    def _abort_upload(self, full: str, upload_id: str) -> str:
        """Abort an unfinished upload; return "" or a sentence saying why it could not be."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                return ""
            return (
                f"the unfinished multipart upload {upload_id} could not be aborted "
                f"({_server_message(exc)}); it holds no readable object and the next put of "
                "this key aborts it"
            )
        except BotoCoreError as exc:
            return (
                f"the unfinished multipart upload {upload_id} could not be aborted "
                f"({type(exc).__name__}); it holds no readable object and the next put of this "
                "key aborts it"
            )
        return ""

    def _abort_leftover_uploads(self, key: str, full: str) -> None:
        try:
            listing = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=full)
        except ClientError as exc:
            if _code(exc) == "AccessDenied":
                return
            raise self._translate(exc, "listing unfinished uploads of", key) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "listing unfinished uploads of", key) from exc
        for upload in listing.get("Uploads", []):
            if upload.get("Key") == full:
                with self._boundary("aborting an unfinished upload of", key):
                    try:
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=full, UploadId=upload["UploadId"]
                        )
                    except ClientError as exc:
                        if _code(exc) != "NoSuchUpload":
                            raise

    def _lock_completed(
        self, key: str, full: str, version: str, retention: Retention, legal_hold: bool
    ) -> None:
        """Apply retention and hold to a completed multipart object unless it already has them
        (never asks for a shorter date than a bucket default gave it)."""
        current = self._retention_of(key, full, version)
        if current is None or current.mode != retention.mode or current.until < retention.until:
            until = retention.until if current is None else max(current.until, retention.until)
            with self._boundary("setting the retention of", key, version, lock=True):
                self._client.put_object_retention(
                    Bucket=self.bucket,
                    Key=full,
                    VersionId=version,
                    Retention={"Mode": retention.mode, "RetainUntilDate": until},
                )
        if legal_hold and not self._hold_of(key, full, version):
            with self._boundary("placing a legal hold on", key, version, lock=True):
                self._client.put_object_legal_hold(
                    Bucket=self.bucket, Key=full, VersionId=version, LegalHold={"Status": "ON"}
                )

    # ---- reading ----------------------------------------------------------------------------

    def _lock_query(self, call: str, what: str, key: str, full: str, version: str | None) -> dict[str, Any] | None:
        """One GetObjectRetention / GetObjectLegalHold; None when the object carries no lock."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if version:
            params["VersionId"] = version
        try:
            response: dict[str, Any] = getattr(self._client, call)(**params)
        except ClientError as exc:
            if _code(exc) in _NO_LOCK_CODES or (
                _code(exc) == "InvalidRequest" and "lock" in _server_message(exc).lower()
            ):
                return None
            raise self._translate(exc, f"reading the {what} of", key, version) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, f"reading the {what} of", key, version) from exc
        return response

    def _retention_of(self, key: str, full: str, version: str | None) -> Retention | None:
        response = self._lock_query("get_object_retention", "retention", key, full, version)
        found = (response or {}).get("Retention") or {}
        mode, until = found.get("Mode"), found.get("RetainUntilDate")
        if mode not in ("COMPLIANCE", "GOVERNANCE") or not isinstance(until, datetime):
            return None
        return Retention(cast(Literal["COMPLIANCE", "GOVERNANCE"], mode), _utc(until))

    def _hold_of(self, key: str, full: str, version: str | None) -> bool:
        response = self._lock_query("get_object_legal_hold", "legal hold", key, full, version)
        return bool(((response or {}).get("LegalHold") or {}).get("Status") == "ON")

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
        hold = _head_hold(head)
        return ObjectInfo(
            key=key,
            version=found_version if found_version != "null" else "",
            size=int(head.get("ContentLength", 0)),
            sha256=sha256,
            retention=_head_retention(head) or self._retention_of(key, full, lookup),
            legal_hold=hold if hold is not None else self._hold_of(key, full, lookup),
            metadata=metadata,
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
        raw = _ObjectReader(
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
                f"{_iso(current.until)} to {_iso(target)}: retention can only be extended"
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
                f"refusing to delete {key} (version {version}): retained until {_iso(info.retention.until)}"
            )
        with self._boundary("deleting", key, version, lock=True):
            self._client.delete_object(Bucket=self.bucket, Key=full, VersionId=version)

    def now(self) -> datetime:
        """The server's time from the Date header of a HeadBucket answer (whole seconds, so up
        to one second behind); the local clock only when the server sends no Date header."""
        with self._boundary("reading the time of"):
            response = self._client.head_bucket(Bucket=self.bucket)
        header = (response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get("date")
        if header:
            try:
                return _utc(parsedate_to_datetime(str(header)))
            except (TypeError, ValueError):
                pass
        return _utc(self._clock())

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
                        ContentMD5=_b64(hashlib.md5(data).digest()),
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
            retention = _head_retention(head)
            if retention is None or retention.until > now or _head_hold(head):
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
            if _status(exc) in (404, 405) or _code(exc) in _NOT_FOUND_CODES:
                return None
            raise
        until = head.get("ObjectLockRetainUntilDate")
        return str(head.get("ObjectLockMode", "")), _iso(until) if isinstance(until, datetime) else ""

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
            refusal = _server_message(exc)
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


class _SizedReader(io.RawIOBase):
    """A read-only, seekable stream of ``_size`` bytes whose position is ``_pos``."""

    _size: int
    _pos: int

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _seek_target(self, offset: int, whence: int) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        return base + offset


class _SourceSpan(_SizedReader):
    """Exactly ``size`` bytes of ``source`` from its position when made, as the seekable body
    of one request (botocore rewinds it to retry). A source with a file descriptor is read with
    ``os.pread``, so its own position does not matter; any other is seeked. A source that ends
    early raises ``IntegrityRejected`` in the middle of the request, which is then cut short
    (nothing is stored). ``progress`` hears of bytes read for the first time, in steps of
    ``step`` bytes, on the thread that sends the request."""

    def __init__(
        self, source: BinaryIO, size: int, key: str, progress: ProgressCallback | None, step: int
    ) -> None:
        super().__init__()
        self._source = source
        self._descriptor = _descriptor(source)
        self._start = source.tell()
        self._size = size
        self._key = key
        self._progress = progress
        self._step = step
        self._pos = 0
        self._reported = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._seek_target(offset, whence)
        return self._pos

    def available(self) -> int:
        """How many bytes the source has from the starting position on, now."""
        if self._descriptor is not None:
            return os.fstat(self._descriptor).st_size - self._start
        end = self._source.seek(0, io.SEEK_END)
        self._source.seek(self._start)
        return end - self._start

    def read(self, count: int | None = -1) -> bytes:
        wanted = self._size - self._pos if count is None or count < 0 else count
        wanted = min(wanted, self._size - self._pos)
        if wanted <= 0:
            return b""
        if self._descriptor is not None:
            data = os.pread(self._descriptor, wanted, self._start + self._pos)
        else:
            self._source.seek(self._start + self._pos)
            data = self._source.read(wanted)
        if not data:
            raise IntegrityRejected(
                f"the source of {self._key} ended after {self._pos} bytes but {self._size} were "
                "declared; the upload was cut short and nothing was stored"
            )
        self._pos += len(data)
        if self._progress is not None and self._pos - self._reported >= self._step:
            self.report()
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def report(self) -> None:
        """Tell ``progress`` of the bytes read and not yet reported."""
        if self._progress is not None and self._pos > self._reported:
            done, self._reported = self._pos - self._reported, self._pos
            self._progress(done)


class _ObjectReader(_SizedReader):
    """Raw, seekable reader over one stored version; errors are ``storage.errors`` classes."""

    def __init__(
        self, store: S3Store, key: str, full: str, version: str | None, size: int, body: Any
    ) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._full = full
        self._version = version
        self._size = size
        self._body: Any = body
        self._pos = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = self._seek_target(offset, whence)
        if target != self._pos:
            self._drop_body()
            self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        if self._body is None:
            self._body = self._store._body_from(self._key, self._full, self._version, self._pos)
        wanted = min(len(view), self._size - self._pos)
        try:
            chunk = self._body.read(wanted)
        except (BotoCoreError, OSError) as exc:
            self._drop_body()
            raise self._store._translate(exc, "reading", self._key, self._version) from exc
        if not chunk:
            self._drop_body()
            raise StorageUnavailable(
                f"the store ended the stream of {self._key} after {self._pos} of {self._size} "
                "bytes; read it again"
            )
        view[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def _drop_body(self) -> None:
        if self._body is not None:
            try:
                self._body.close()
            except (BotoCoreError, OSError):
                pass
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


_CREDENTIALS_IN_URL = (
    "credentials do not belong in a store URL: give them through boto3's standard chain "
    "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials, or an "
    "instance role)"
)


def _no_lock_message(bucket: str, endpoint: str) -> str:
    return (
        f"bucket {bucket} at {endpoint} does not have S3 Object Lock enabled, so retention "
        "cannot be enforced by the server. Create a new bucket with Object Lock enabled "
        f"(aws s3api create-bucket --bucket NEW --object-lock-enabled-for-bucket) and point the "
        "store URL at it. Whether Object Lock can be added to an existing bucket depends on the "
        "server: AWS S3 (since 2023) and Ceph RGW from release 20 (Tentacle) accept "
        "put-object-lock-configuration on a bucket whose versioning is enabled; older Ceph RGW "
        "releases such as 16 (Pacific) refuse it (InvalidBucketState)"
    )


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

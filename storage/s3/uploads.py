"""Putting bytes: one PutObject (in memory, or streamed), or a multipart upload of parallel
parts, with or without an ``UploadPlan`` of per-part digests; the payload-validation probe.
See the package docstring for what is validated, and by whom."""

from __future__ import annotations

import hashlib
import math
import os
import uuid
from datetime import datetime, timedelta, timezone
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from storage.base import ProgressCallback, Retention
from storage.errors import IntegrityRejected, ObjectExists, StorageError
from storage.s3.bucket import S3Bucket, b64
from storage.s3.client import KNOWN_PAYLOAD_PARAMETER, in_background
from storage.s3.readers import SourceSpan, descriptor_of, pread_exactly, read_up_to
from storage.s3.translate import (
    NOT_FOUND_CODES,
    PAYLOAD_MISMATCH_CODES,
    code_of,
    server_message,
    status_of,
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
_CompletedParts = list[dict[str, Any]]
PROBE_PREFIX = "canary/payload-sha256-"
STALE_PROBE = timedelta(minutes=10)


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


class S3Uploads(S3Bucket):
    """The upload half of ``S3Store``: its ``put`` chooses among these."""

    multipart_threshold: int
    part_size: int
    max_workers: int
    flexible_checksums: bool
    in_memory_limit: int
    _payload_checked: bool | None
    _payload_probe: Any
    _payload_soon: Future[bool] | None

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
                self._payload_soon = in_background("s3-payload-probe", self.validates_payload_sha256)

    def _probe_payload_validation(self) -> bool:
        self._abort_stale_probes()
        full = self._full_key(f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}")
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
                **{KNOWN_PAYLOAD_PARAMETER: hashlib.sha256(data + b"?").hexdigest()},
            )
        except ClientError as exc:
            return code_of(exc) in PAYLOAD_MISMATCH_CODES
        except BotoCoreError:
            return False
        finally:
            self._abort_upload(full, upload_id)
        return False

    def _abort_stale_probes(self) -> None:
        """Abort probe uploads begun more than ``STALE_PROBE`` ago: the probe runs on a
        background thread, which a command that ends early does not wait for. Best effort."""
        try:
            listing = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=self._full_key(PROBE_PREFIX))
            cutoff = datetime.now(timezone.utc) - STALE_PROBE
            for upload in listing.get("Uploads", []) or []:
                begun = upload.get("Initiated")
                if isinstance(begun, datetime) and begun < cutoff:
                    self._abort_upload(str(upload["Key"]), str(upload["UploadId"]))
        except (ClientError, BotoCoreError, KeyError):
            pass

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

    def _refuse_existing(self, key: str, full: str) -> None:
        try:
            self._client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if status_of(exc) == 404 or code_of(exc) in NOT_FOUND_CODES:
                return
            raise self._translate(exc, "checking for an existing", key) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "checking for an existing", key) from exc
        raise ObjectExists(key)

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
        data = read_up_to(source, size + 1)
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
            "ContentMD5": b64(hashlib.md5(data).digest()),
            "Metadata": metadata,
            "IfNoneMatch": "*",
            KNOWN_PAYLOAD_PARAMETER: sha256,
            **self._lock_parameters(retention, legal_hold),
        }
        if self.flexible_checksums:
            params["ChecksumSHA256"] = b64(bytes.fromhex(sha256))
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
        body = SourceSpan(source, size, key, progress, step=self.part_size)
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
            KNOWN_PAYLOAD_PARAMETER: sha256,
        }
        if self.flexible_checksums:
            params["ChecksumSHA256"] = b64(bytes.fromhex(sha256))
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
        descriptor = descriptor_of(source) if plan is not None else None
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
                data = pread_exactly(descriptor, length, start + offset)
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
                    data = read_up_to(source, length)
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
            params["ContentMD5"] = b64(md5)
        if sha is not None:
            params[KNOWN_PAYLOAD_PARAMETER] = sha.hex()
            if self.flexible_checksums:
                params["ChecksumSHA256"] = part["ChecksumSHA256"] = b64(sha)
        with self._boundary(f"uploading part {number} of", key):
            response = self._client.upload_part(**params)
        part["ETag"] = response["ETag"]
        return part, len(data)

    def _abort_upload(self, full: str, upload_id: str) -> str:
        """Abort an unfinished upload; return "" or a sentence saying why it could not be."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except ClientError as exc:
            if code_of(exc) == "NoSuchUpload":
                return ""
            return (
                f"the unfinished multipart upload {upload_id} could not be aborted "
                f"({server_message(exc)}); it holds no readable object and the next put of "
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
            if code_of(exc) == "AccessDenied":
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
                        if code_of(exc) != "NoSuchUpload":
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

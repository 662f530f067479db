"""One bucket (and key prefix) reached through one client: naming, the error boundary, the
Object Lock checks of the bucket, and reading an object's lock. ``S3Store`` builds on it."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Literal, cast

from botocore.exceptions import BotoCoreError, ClientError

from storage.base import Retention
from storage.errors import StorageError, StorageUnavailable, StoreMisconfigured
from storage.s3.client import S3Client
from storage.s3.translate import (
    NO_LOCK_CODES,
    code_of,
    no_lock_message,
    server_message,
    translate,
)


def head_retention(head: Mapping[str, Any]) -> Retention | None:
    """The retention HeadObject reported (``x-amz-object-lock-mode`` and ``-retain-until-date``),
    or None when it reported none."""
    mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    if mode not in ("COMPLIANCE", "GOVERNANCE") or not isinstance(until, datetime):
        return None
    return Retention(cast(Literal["COMPLIANCE", "GOVERNANCE"], mode), utc(until))


def head_hold(head: Mapping[str, Any]) -> bool | None:
    """The legal hold HeadObject reported (``x-amz-object-lock-legal-hold``), or None."""
    status = head.get("ObjectLockLegalHoldStatus")
    return None if status not in ("ON", "OFF") else status == "ON"



def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)




class S3Bucket:
    """The bucket side of ``S3Store``: where keys live, how errors are named, whether the bucket
    can lock objects. Thread-safe once made."""

    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    max_attempts: int
    read_timeout: float
    _lock_checked: bool
    _made: S3Client | None
    _making: Future[S3Client] | None

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
        """See ``translate``: this bucket's names go into the message."""
        return translate(
            exc,
            action,
            bucket=self.bucket,
            endpoint=self._endpoint(),
            location=self._location(),
            attempts=self.max_attempts,
            read_timeout=self.read_timeout,
            key=key,
            version=version,
            lock=lock,
        )

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
            if code_of(exc) == "NoSuchBucket" and create:
                self._create_bucket(default_retention_days)
                self.ensure_bucket(create=False)
                return
            if code_of(exc) in NO_LOCK_CODES or (
                code_of(exc) == "InvalidRequest" and "lock" in server_message(exc).lower()
            ):
                raise StoreMisconfigured(no_lock_message(self.bucket, self._endpoint())) from exc
            raise self._translate(exc, "checking Object Lock on") from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "checking Object Lock on") from exc
        enabled = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise StoreMisconfigured(no_lock_message(self.bucket, self._endpoint()))
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
            if code_of(exc) not in ("BucketAlreadyOwnedByYou",):
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


    def _version_of(self, key: str, response: Mapping[str, Any]) -> str:
        version = response.get("VersionId")
        if not version or version == "null":
            raise StoreMisconfigured(
                f"the store kept {key} without a version id: versioning is off on bucket "
                f"{self.bucket}, so Object Lock cannot protect it; use a bucket created with "
                "Object Lock enabled"
            )
        return str(version)

    def _lock_parameters(self, retention: Retention, legal_hold: bool) -> dict[str, Any]:
        params: dict[str, Any] = {
            "ObjectLockMode": retention.mode,
            "ObjectLockRetainUntilDate": retention.until,
        }
        if legal_hold:
            params["ObjectLockLegalHoldStatus"] = "ON"
        return params

    # ---- locks of one object ----------------------------------------------------------------

    def _lock_query(self, call: str, what: str, key: str, full: str, version: str | None) -> dict[str, Any] | None:
        """One GetObjectRetention / GetObjectLegalHold; None when the object carries no lock."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if version:
            params["VersionId"] = version
        try:
            response: dict[str, Any] = getattr(self._client, call)(**params)
        except ClientError as exc:
            if code_of(exc) in NO_LOCK_CODES or (
                code_of(exc) == "InvalidRequest" and "lock" in server_message(exc).lower()
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
        return Retention(cast(Literal["COMPLIANCE", "GOVERNANCE"], mode), utc(until))

    def _hold_of(self, key: str, full: str, version: str | None) -> bool:
        response = self._lock_query("get_object_legal_hold", "legal hold", key, full, version)
        return bool(((response or {}).get("LegalHold") or {}).get("Status") == "ON")

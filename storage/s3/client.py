"""The botocore client a store uses: bounded timeouts and retries, and a signer that signs a
body with a SHA-256 already known instead of hashing it again.

botocore is imported inside the functions, so that importing ``storage`` stays cheap and a
client can be built on a background thread while the caller hashes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal, TypeVar

S3Client = Any
"""A boto3 S3 client (boto3 ships no type information)."""

KNOWN_PAYLOAD_PARAMETER = "CustodyPayloadSHA256"
"""A request parameter of this module's own, taken out before botocore builds the request: the
hex SHA-256 of the body, signed as ``x-amz-content-sha256`` instead of hashing the body again."""
KNOWN_PAYLOAD_CONTEXT = "custody_payload_sha256"
KNOWN_PAYLOAD_SIGNER = "custody-s3v4"
_signer_registration = threading.Lock()
_T = TypeVar("_T")


def _register_known_payload_signer() -> None:
    """Register ``custody-s3v4`` with botocore: S3's SigV4 signer, except that a body whose
    SHA-256 is already known is signed with that digest rather than read and hashed once more.
    The server hashes what it receives and refuses a mismatch, so a wrong digest given to it can
    only make a request fail, never pass. (botocore is imported here, not with this module, so
    that a store can be made on a background thread.)"""
    import botocore.auth

    with _signer_registration:
        if KNOWN_PAYLOAD_SIGNER in botocore.auth.AUTH_TYPE_MAPS:
            return

        class KnownPayloadAuth(botocore.auth.S3SigV4Auth):
            def payload(self, request: Any) -> str:
                known = request.context.get(KNOWN_PAYLOAD_CONTEXT)
                trailer = getattr(self, "_is_streaming_checksum_payload", None)
                if known and not (trailer is not None and trailer(request)):
                    return str(known)
                return super().payload(request)

        botocore.auth.AUTH_TYPE_MAPS[KNOWN_PAYLOAD_SIGNER] = KnownPayloadAuth


def _take_known_payload(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    known = params.pop(KNOWN_PAYLOAD_PARAMETER, None)
    if known is not None:
        context[KNOWN_PAYLOAD_CONTEXT] = known


def _choose_known_payload_signer(context: dict[str, Any], signature_version: Any, **kwargs: Any) -> Any:
    """For a request whose payload SHA-256 is known: the signer botocore's own handlers would
    choose, with S3's SigV4 replaced by ``custody-s3v4``. Other requests: no opinion."""
    if not context.get(KNOWN_PAYLOAD_CONTEXT):
        return None
    import botocore.handlers

    chosen = None
    for name in ("set_operation_specific_signer", "_set_auth_scheme_preference_signer"):
        choice = getattr(botocore.handlers, name, None)
        chosen = choice(context=context, signature_version=signature_version, **kwargs) if choice else None
        if chosen is not None:
            break
    chosen = signature_version if chosen is None else chosen
    return KNOWN_PAYLOAD_SIGNER if chosen == "s3v4" else chosen


def sign_known_payloads(client: S3Client) -> None:
    """Let ``client`` sign bodies whose SHA-256 is given as ``KNOWN_PAYLOAD_PARAMETER``."""
    _register_known_payload_signer()
    events = client.meta.events
    events.register("before-parameter-build.s3", _take_known_payload, unique_id="custody-known-payload")
    events.register("choose-signer.s3", _choose_known_payload_signer, unique_id="custody-known-payload-signer")


def in_background(name: str, work: Callable[[], _T]) -> Future[_T]:
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


DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
"""Seconds any one socket operation of a request may wait (for an answer, or for the server to
take more of a body); a server that stops answering fails the attempt after this long."""
DEFAULT_MAX_ATTEMPTS = 3
"""Attempts per call, retries included: a server that does not answer at all turns every call
into ``StorageUnavailable`` after at most about ``attempts * (connect + read)`` seconds plus
botocore's backoff (under two minutes with the defaults)."""


def make_client(
    endpoint_url: str | None = None,
    region: str | None = None,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
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

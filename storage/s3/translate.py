"""The one boundary where botocore's exceptions become ``storage.errors`` classes.

Nothing above ``storage/s3/`` sees a botocore exception: every call to the server runs inside
``S3Bucket._boundary`` (or catches and hands the exception to ``translate``). Messages name the
bucket, the key and the endpoint, say what to do next, and never carry credentials.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from storage.errors import (
    IntegrityRejected,
    ObjectExists,
    ObjectNotFound,
    RetentionViolation,
    StorageError,
    StorageUnavailable,
    StoreMisconfigured,
)

CREDENTIAL_CODES = frozenset(
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
INTEGRITY_CODES = frozenset(
    {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "IncompleteBody", "InvalidChecksum"}
)
NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"})
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
BUSY_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable", "InternalError"}
)
PAYLOAD_MISMATCH_CODES = frozenset({"XAmzContentSHA256Mismatch"})
TIMEOUT_ERRORS = frozenset({"ReadTimeoutError", "ConnectTimeoutError", "ConnectionClosedError"})
"""botocore's names for a request that got no answer, or whose body the server stopped taking,
in time (after its retries)."""


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "") or "")


def status_of(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def server_message(exc: ClientError) -> str:
    code = code_of(exc)
    message = str(exc.response.get("Error", {}).get("Message", "") or "")
    status = status_of(exc)
    text = code if code and code != str(status) else f"HTTP {status}"
    return f"{text}: {message}" if message else text


def translate(
    exc: Exception,
    action: str,
    *,
    bucket: str,
    endpoint: str,
    location: str,
    attempts: int,
    read_timeout: float = 0.0,
    key: str | None = None,
    version: str | None = None,
    lock: bool = False,
) -> StorageError:
    """The ``storage.errors`` instance for a botocore exception raised while ``action``.

    ``bucket``, ``endpoint`` and ``location`` name the place in the message; ``attempts`` is how
    many tries botocore made, each waiting at most ``read_timeout`` seconds for an answer. ``key`` makes 404s mean ``ObjectNotFound``; ``lock`` makes 403s
    mean the server refused on account of retention or a legal hold.
    """
    what = f"{key} (version {version})" if key and version else (key or f"bucket {bucket}")
    where = location
    if isinstance(exc, ClientError):
        code, status, detail = code_of(exc), status_of(exc), server_message(exc)
        if code == "NoSuchBucket":
            return StorageUnavailable(
                f"bucket {bucket} does not exist at {endpoint} ({action} {what}); "
                "fix the store URL, or create the bucket with Object Lock enabled "
                f"(aws s3api create-bucket --bucket {bucket} --object-lock-enabled-for-bucket)"
            )
        if code in CREDENTIAL_CODES:
            return StorageUnavailable(
                f"the S3 endpoint {endpoint} rejected the credentials ({detail}) while "
                f"{action} {what} in bucket {bucket}; check AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials (boto3's standard "
                "chain)" + (" and this machine's clock" if code == "RequestTimeTooSkewed" else "")
            )
        if code in INTEGRITY_CODES:
            return IntegrityRejected(
                f"the server refused the bytes of {what} ({detail}): they do not match the "
                f"digest sent with them; nothing was stored under {what}"
            )
        if code == "PreconditionFailed" or status == 412:
            return ObjectExists(key or what)
        if key is not None and (code in NOT_FOUND_CODES or status in (404, 405)):
            return ObjectNotFound(key, version)
        if code in NO_LOCK_CODES or (code == "InvalidRequest" and "lock" in detail.lower()):
            return StoreMisconfigured(f"{no_lock_message(bucket, endpoint)} ({detail})")
        if code == "AccessDenied" or status == 403:
            if lock:
                return RetentionViolation(
                    f"the server refused {action} {what}: {detail} (retention or legal hold)"
                )
            return StorageUnavailable(
                f"access denied ({detail}) while {action} {what} in {where}; check the "
                "credentials and that their policy allows this operation on the bucket"
            )
        if code in BUSY_CODES or status >= 500:
            return StorageUnavailable(
                f"the S3 server {endpoint} failed ({detail}) while {action} {what} "
                f"after {attempts} attempts; try again later"
            )
        return StorageError(f"the S3 server {endpoint} refused {action} {what}: {detail}")
    if isinstance(exc, BotoCoreError):
        name = type(exc).__name__
        if "Credential" in name or name == "ProfileNotFound":
            return StorageUnavailable(
                f"no usable S3 credentials for {where} ({name}); set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials"
            )
        if name in TIMEOUT_ERRORS:
            return StorageUnavailable(
                f"the S3 endpoint {endpoint} (bucket {bucket}) did not answer while {action} "
                f"{what}: {name}, {attempts} attempt(s) of up to {read_timeout:g} s each; the "
                "server may be overloaded, full or stopped: check it, then run the command again"
            )
        return StorageUnavailable(
            f"cannot reach the S3 endpoint {endpoint} (bucket {bucket}) while "
            f"{action} {what}: {name} after up to {attempts} attempts; check the "
            "endpoint URL, the network and that the server is running"
        )
    return StorageUnavailable(f"I/O error while {action} {what} in {where}: {exc}")


def no_lock_message(bucket: str, endpoint: str) -> str:
    return (
        f"bucket {bucket} at {endpoint} does not have S3 Object Lock enabled, so retention "
        "cannot be enforced by the server. Create a new bucket with Object Lock enabled "
        f"(aws s3api create-bucket --bucket NEW --object-lock-enabled-for-bucket) and point the "
        "store URL at it. Whether Object Lock can be added to an existing bucket depends on the "
        "server: AWS S3 (since 2023) and Ceph RGW from release 20 (Tentacle) accept "
        "put-object-lock-configuration on a bucket whose versioning is enabled; older Ceph RGW "
        "releases such as 16 (Pacific) refuse it (InvalidBucketState)"
    )


"""What an ``s3://`` store URL may say, checked before anything is built: bucket, key prefix,
endpoint, region and tuning. Credentials never belong in it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from storage.errors import StorageError
from storage.s3.uploads import MiB

URL_PARAMETERS = (
    "endpoint_url",
    "region",
    "multipart_threshold_mib",
    "part_size_mib",
    "workers",
    "flexible_checksums",
    "connect_timeout_s",
    "read_timeout_s",
    "max_attempts",
)
_TUNING = {
    "connect_timeout_s": ("connect_timeout", 1, 300, 1),
    "read_timeout_s": ("read_timeout", 1, 3600, 1),
    "max_attempts": ("max_attempts", 1, 10, 1),
    "multipart_threshold_mib": ("multipart_threshold", 1, 5 * 1024, MiB),
    "part_size_mib": ("part_size", 5, 5 * 1024, MiB),
    "workers": ("max_workers", 1, 64, 1),
}
"""URL parameter -> (constructor option, smallest, largest, unit: bytes, seconds or a count)."""

_CREDENTIAL_WORDS = ("secret", "access", "token", "password", "credential", "session", "key_id")
_CREDENTIALS_IN_URL = (
    "credentials do not belong in a store URL: give them through boto3's standard chain "
    "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials, or an "
    "instance role)"
)


def parse_store_url(url: str) -> tuple[str, str, dict[str, Any]]:
    """(bucket, key prefix, ``S3Store`` constructor options) from
    ``s3://bucket[/prefix][?endpoint_url=...&region=...&...]``.

    Credentials are refused in the URL (user info or credential-like parameters): they come
    only from boto3's standard chain. Unknown, repeated or out-of-range parameters are refused.
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
    return bucket, unquote(parts.path), {"endpoint_url": endpoint, "region": region, **tuning}

"""RFC 3161 timestamp tokens over checkpoints, from a configured time-stamping authority.

The request (SHA-256 imprint of the signed checkpoint note's bytes, a nonce, certReq) is built
and the response parsed and verified by the ``rfc3161-client`` library: status granted, the
signature chains to the configured CA certificate, the signer certificate carries the critical
timeStamping extended key usage, the nonce and the imprint match. What is kept is the whole
TimeStampResp (DER), which ``openssl ts -verify -data <checkpoint> -in <token.tsr> -CAfile
<ca.pem>`` checks with stock tools.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509

from custody.anchors.config import TsaConfig
from custody.errors import ConfigError

MAX_REPLY = 1 << 16


class TimestampError(Exception):
    """The authority could not be reached, refused, or answered a token that does not verify."""


def _roots(ca: Path | bytes) -> list[x509.Certificate]:
    where = "(given)" if isinstance(ca, bytes) else str(ca)
    try:
        data = ca if isinstance(ca, bytes) else ca.read_bytes()
    except OSError as exc:
        raise ConfigError(f"the time-stamping authority's CA certificate {where} is unreadable: {exc.strerror}") from exc
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"the time-stamping authority's CA certificate {where} is not PEM: {exc}") from exc


def verify_token(ca: Path | bytes, token: bytes, data: bytes, *, nonce: int | None = None) -> datetime:
    """Verify a TimeStampResp (DER) over ``data``; return its genTime (UTC). Raises
    :class:`TimestampError` naming what failed."""
    from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(token)
    except ValueError as exc:
        raise TimestampError(f"not an RFC 3161 timestamp response: {exc}") from exc
    builder = VerifierBuilder()
    for root in _roots(ca):
        builder = builder.add_root_certificate(root)
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify_message(response, data)
    except VerificationError as exc:
        raise TimestampError(f"the timestamp token does not verify: {exc}") from exc
    when = response.tst_info.gen_time
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def request_token(tsa: TsaConfig, data: bytes, timeout: float) -> tuple[bytes, datetime]:
    """Ask ``tsa`` for a token over ``data``; return (the TimeStampResp DER, its genTime)."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    request = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    parts = urllib.parse.urlsplit(tsa.url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, request.as_bytes(), {"Content-Type": "application/timestamp-query"})
        answer = connection.getresponse()
        body = answer.read(MAX_REPLY + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise TimestampError(f"the time-stamping authority {tsa.url} is unreachable: {exc}") from exc
    finally:
        connection.close()
    if answer.status != 200:
        raise TimestampError(f"the time-stamping authority {tsa.url} answered HTTP {answer.status}")
    if len(body) > MAX_REPLY:
        raise TimestampError(f"the time-stamping authority {tsa.url} answered more than {MAX_REPLY} bytes")
    when = verify_token(tsa.ca, body, data, nonce=request.nonce)
    return body, when


def token_issuer(tsa: TsaConfig) -> str:
    """How the ledger names an authority: its URL (at most 255 characters)."""
    return tsa.url if len(tsa.url) <= 255 else tsa.url[:190] + "#" + hashlib.sha256(tsa.url.encode()).hexdigest()

"""Unfinished multipart uploads left under the store's prefix by writers that died.

An upload that a writer abandons on an error, a timeout, Ctrl-C or SIGTERM is aborted by that
writer, and one left by a writer that was killed is aborted by the next put of the same key
(``S3Uploads._abort_leftover_uploads``). An upload whose key is never put again would keep its
parts (and their cost) for ever. S3 offers no lock that outlives a client, so a live upload is
told from an abandoned one by its age only: an upload begun longer ago than the caller's
``older_than`` (audit's ``--in-flight-grace``) is taken to be abandoned; a younger one may be an
ingest running now, and is left alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from storage.base import format_utc
from storage.s3.translate import code_of, server_message
from storage.s3.uploads import PROBE_PREFIX, S3Uploads
from storage.staging import Leftover


def unfinished_uploads(uploads: S3Uploads, now: datetime, older_than: timedelta, remove: bool = True) -> list[Leftover]:
    """The multipart uploads under the store's prefix begun before ``now - older_than``,
    aborted unless ``remove`` is False. Nothing when the credentials may not list uploads (an
    auditor's read-only role): what cannot be seen is not reported as clean either way."""
    cutoff = now - older_than
    found: list[Leftover] = []
    try:
        pages = uploads._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=uploads.bucket, Prefix=uploads.prefix
        )
        listed = [upload for page in pages for upload in page.get("Uploads", []) or []]
    except ClientError as exc:
        if code_of(exc) == "AccessDenied":
            return []
        raise uploads._translate(exc, "listing unfinished uploads in") from exc
    except BotoCoreError as exc:
        raise uploads._translate(exc, "listing unfinished uploads in") from exc
    for upload in listed:
        begun = upload.get("Initiated")
        full, upload_id = str(upload.get("Key", "")), str(upload.get("UploadId", ""))
        if not isinstance(begun, datetime) or begun >= cutoff or not full.startswith(uploads.prefix):
            continue
        if full.startswith(uploads.prefix + PROBE_PREFIX):
            continue  # the payload-validation probe's own, aborted by it or after STALE_PROBE
        where = f"s3://{uploads.bucket}/{full} (upload {upload_id}, begun {format_utc(begun)})"
        problem = ""
        if remove:
            try:
                uploads._client.abort_multipart_upload(Bucket=uploads.bucket, Key=full, UploadId=upload_id)
            except ClientError as exc:
                if code_of(exc) == "NoSuchUpload":
                    continue  # completed or aborted since it was listed: not left over
                problem = server_message(exc)
            except BotoCoreError as exc:
                problem = type(exc).__name__
        found.append(Leftover(where, 0, False, remove and not problem, problem or None, kind="upload"))
    return found

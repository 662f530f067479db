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

Every botocore exception is turned into a ``storage.errors`` class at this package's one boundary (``translate``);
no message carries credentials. Credentials come only from boto3's standard chain (environment,
shared files, profiles, instance or container roles), never from the store URL.

Modules: ``client`` (the botocore client, timeouts, retries, the known-payload signer),
``translate`` (the one boundary from botocore's exceptions to ``storage.errors``), ``readers``
(seekable request and response bodies), ``bucket`` (naming, bucket checks, object locks),
``uploads`` (single PutObject, multipart, upload plans), ``leftovers`` (unfinished uploads of
writers that died), ``url`` (what a store URL may say) and
``store`` (``S3Store``).

Every call has a deadline: each socket operation waits at most ``read_timeout`` seconds
(``read_timeout_s`` in the URL, default 30) and each call makes at most ``max_attempts``
attempts (default 3), so a server that stops answering becomes ``StorageUnavailable`` naming
the endpoint within a bounded time. An interrupted multipart upload (an error, a timeout,
KeyboardInterrupt, or SIGTERM, which the command line turns into KeyboardInterrupt) is aborted
before the error propagates; one whose abort could not reach the server, or whose writer was
killed, is aborted by the next put of the same key, and by an audit once it is older than the
audit's in-flight grace (``leftovers``).
"""

from storage.base import confirm_stored, whole_second_ceiling
from storage.s3.client import make_client
from storage.s3.store import S3Store
from storage.s3.uploads import UploadPlan

__all__ = ["S3Store", "UploadPlan", "confirm_stored", "make_client", "whole_second_ceiling"]

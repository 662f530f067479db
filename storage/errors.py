"""Errors raised by object-store backends.

Nothing above ``storage/`` ever sees a backend library's exception: each backend turns them
into one of these at its boundary (``raise ... from exc``). Each class carries the process exit
code that the command line maps it to.

    StorageError                 5  the store misbehaved or could not be used
    ├── StorageUnavailable       5  unreachable, bad credentials, unknown bucket, timeouts
    ├── StoreMisconfigured       5  e.g. a bucket without Object Lock
    ├── ObjectNotFound           3  no such key or version
    ├── ObjectExists             4  a put would overwrite a stored object
    ├── IntegrityRejected        3  the bytes received do not match the declared digest or size
    ├── StoredObjectMismatch     3  a stored version is not the bytes that were sent
    └── RetentionViolation       4  delete/shorten/unhold refused by retention or legal hold
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every store error. ``str(exc)`` says what happened and what to do."""

    exit_code = 5


class StorageUnavailable(StorageError):
    """The store cannot be reached or used right now (network, credentials, bucket, timeouts)."""

    exit_code = 5


class StoreMisconfigured(StorageError):
    """The store is reachable but cannot give the guarantees the tool requires."""

    exit_code = 5


class ObjectNotFound(StorageError):
    """No object (or no such version of it) exists under the key."""

    exit_code = 3

    def __init__(self, key: str, version: str | None = None, detail: str = "") -> None:
        self.key = key
        self.version = version
        where = f"{key} (version {version})" if version else key
        super().__init__(f"object not found in the store: {where}" + (f": {detail}" if detail else ""))


class ObjectExists(StorageError):
    """A put named a key that already holds an object; stored objects are never overwritten."""

    exit_code = 4

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"refusing to overwrite stored object {key}")


class IntegrityRejected(StorageError):
    """The store refused the bytes it received: their digest or size is not the declared one.

    Nothing readable is left under the key when this is raised.
    """

    exit_code = 3


class StoredObjectMismatch(StorageError):
    """The store holds a version whose size or SHA-256 is not that of the bytes sent for it.

    An integrity failure: the version exists (it may be locked and cannot be removed) and is
    left as it is for an audit to list.
    """

    exit_code = 3


class RetentionViolation(StorageError):
    """The store refused an operation that retention or a legal hold forbids."""

    exit_code = 4

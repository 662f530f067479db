"""Object-store backends behind one protocol. Imports nothing from ``custody`` or ``cli``."""

from storage.base import Capabilities, LockProbe, ObjectInfo, ObjectStore, ProgressCallback, Retention
from storage.errors import (
    IntegrityRejected,
    ObjectExists,
    ObjectNotFound,
    RetentionViolation,
    StorageError,
    StorageUnavailable,
    StoreMisconfigured,
)

__all__ = [
    "Capabilities",
    "IntegrityRejected",
    "LockProbe",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ProgressCallback",
    "Retention",
    "RetentionViolation",
    "StorageError",
    "StorageUnavailable",
    "StoreMisconfigured",
]

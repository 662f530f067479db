"""The checks of one recorded object: present at its version, its size and digests in the
store's metadata, its lock and hold, its attachments, and (when due) its bytes re-hashed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from custody import times
from custody.audit.recorded import RecordedAttachment, RecordedObject
from custody.audit.rehash import LocalPrehash, content_digest
from custody.audit.report import AuditReport, ObjectResult, ProgressSink
from custody.errors import Finding, FindingKind
from storage.base import ObjectInfo, ObjectStore
from storage.errors import ObjectNotFound, StorageError, StorageUnavailable


class ObjectAuditor:
    """Checks one object at a time (called from worker threads)."""

    def __init__(
        self, store: ObjectStore, report: AuditReport, progress: ProgressSink, prehash: LocalPrehash | None
    ) -> None:
        self.store = store
        self.report = report
        self.progress = progress
        self.prehash = prehash

    def __call__(self, obj: RecordedObject) -> ObjectResult:
        result = ObjectResult(obj.blake3, obj.key, obj.version, obj.size, disposed=obj.disposed)
        if obj.disposed:
            return result
        info = self._stat(obj, obj.key, obj.version, result)
        if info is not None:
            self._metadata(obj, info, result)
            self._locks(obj, info, result)
        for attachment in obj.attachments:
            self._attachment(obj, attachment, result)
        if info is not None and self.report.due(obj.blake3):
            self._rehash(obj, result)
        self.progress.checked(obj.blake3)
        return result

    def _finding(self, obj: RecordedObject, kind: FindingKind, message: str, key: str, version: str | None,
                 algorithm: str | None = None, expected: str | None = None, found: str | None = None,
                 **extra: Any) -> Finding:
        return Finding(kind, obj.blake3, message, algorithm, expected, found,
                       extra={"key": key, "version": version or None, **extra})

    def _stat(self, obj: RecordedObject, key: str, version: str | None, result: ObjectResult) -> ObjectInfo | None:
        try:
            return self.store.stat(key, version or None)
        except ObjectNotFound:
            message = f"{key} (version {version}) is not in the store" if version else f"{key} is not in the store"
            try:
                latest = self.store.stat(key)
            except ObjectNotFound:
                pass
            except StorageUnavailable:
                raise
            except StorageError:
                pass
            else:
                if version and latest.version != version:
                    message += f"; the key now holds another version ({latest.version})"
            result.findings.append(self._finding(obj, FindingKind.MISSING, message, key, version))
        except StorageUnavailable:
            raise
        except (StorageError, OSError) as exc:
            result.findings.append(self._finding(obj, FindingKind.UNREADABLE, f"cannot stat {key}: {exc}", key, version))
        return None

    def _metadata(self, obj: RecordedObject, info: ObjectInfo, result: ObjectResult) -> None:
        where = f"{obj.key} (version {obj.version})"
        if info.size != obj.size:
            result.findings.append(self._finding(
                obj, FindingKind.MISMATCH, f"the store reports another size for {where}", obj.key, obj.version,
                "size", str(obj.size), str(info.size), source="store"))
        if info.sha256 != obj.sha256:
            result.findings.append(self._finding(
                obj, FindingKind.MISMATCH, f"the SHA-256 in the store's metadata of {where} is not the recorded one",
                obj.key, obj.version, "sha256", obj.sha256, info.sha256 or "none", source="metadata"))
        stored_blake3 = info.metadata.get("blake3")
        if stored_blake3 != obj.blake3:
            result.findings.append(self._finding(
                obj, FindingKind.MISMATCH, f"the BLAKE3 in the store's metadata of {where} is not the recorded one",
                obj.key, obj.version, "blake3", obj.blake3, stored_blake3 or "none", source="metadata"))

    def _weak(self, info: ObjectInfo, until: datetime | None) -> tuple[str, str] | None:
        """(expected, found) when the stored lock is weaker than COMPLIANCE until ``until``."""
        wanted = f"COMPLIANCE until {times.format_utc(until)}" if until else "COMPLIANCE"
        if info.retention is None:
            return wanted, "no retention"
        found = f"{info.retention.mode} until {times.format_utc(info.retention.until)}"
        if info.retention.mode != "COMPLIANCE" or (until is not None and info.retention.until < until):
            return wanted, found
        return None

    def _locks(self, obj: RecordedObject, info: ObjectInfo, result: ObjectResult) -> None:
        where = f"{obj.key} (version {obj.version})"
        weak = self._weak(info, obj.retained_until)
        if weak is not None:
            result.findings.append(self._finding(
                obj, FindingKind.WEAK_RETENTION, f"the store's retention of {where} is weaker than the ledger records",
                obj.key, obj.version, None, weak[0], weak[1]))
        if info.legal_hold != obj.held:
            state = "records a legal hold on it" if obj.held else "records no legal hold on it"
            result.findings.append(self._finding(
                obj, FindingKind.HOLD_MISMATCH,
                f"the ledger {state}, but the store's legal hold on {where} is {'on' if info.legal_hold else 'off'}",
                obj.key, obj.version, None, "on" if obj.held else "off", "on" if info.legal_hold else "off"))

    def _attachment(self, obj: RecordedObject, attachment: RecordedAttachment, result: ObjectResult) -> None:
        key = attachment.key
        info = self._stat(obj, key, None, result)
        if info is None:
            return
        if info.size != attachment.size:
            result.findings.append(self._finding(
                obj, FindingKind.MISMATCH, f"the store reports another size for the {attachment.kind} attachment {key}",
                key, info.version, "size", str(attachment.size), str(info.size), source="store"))
        if info.sha256 != attachment.sha256:
            result.findings.append(self._finding(
                obj, FindingKind.MISMATCH, f"the SHA-256 in the store's metadata of the attachment {key} is not the recorded one",
                key, info.version, "sha256", attachment.sha256, info.sha256 or "none", source="metadata"))
        weak = self._weak(info, obj.attachment_until)
        if weak is not None:
            result.findings.append(self._finding(
                obj, FindingKind.WEAK_RETENTION, f"the store's retention of the attachment {key} is weaker than the ledger records",
                key, info.version, None, weak[0], weak[1]))
        if self.report.due(obj.blake3):
            digest = self._read(obj, key, info.version, "sha256", result)
            if digest is not None and digest != attachment.sha256:
                result.findings.append(self._finding(
                    obj, FindingKind.MISMATCH, f"the bytes of the attachment {key} no longer have the recorded SHA-256",
                    key, info.version, "sha256", attachment.sha256, digest, source="content"))

    def _read(self, obj: RecordedObject, key: str, version: str | None, algorithm: str, result: ObjectResult) -> str | None:
        for attempt in (1, 2):
            try:
                digest, count = content_digest(
                    self.store, key, version or None, algorithm, self.progress.hashed, self.prehash
                )
            except ObjectNotFound:
                result.findings.append(self._finding(obj, FindingKind.MISSING, f"{key} vanished while it was read", key, version))
                return None
            except StorageUnavailable:
                if attempt == 2:
                    raise
                continue
            except (StorageError, OSError) as exc:
                result.findings.append(self._finding(obj, FindingKind.UNREADABLE, f"cannot read {key}: {exc}", key, version))
                return None
            result.bytes_hashed += count
            return digest
        return None

    def _rehash(self, obj: RecordedObject, result: ObjectResult) -> None:
        digest = self._read(obj, obj.key, obj.version, "blake3", result)
        if digest is None:
            return
        result.hashed = True
        if digest != obj.blake3:
            result.findings.append(self._finding(
                obj, FindingKind.MISMATCH, f"the bytes of {obj.key} (version {obj.version}) no longer have the recorded BLAKE3",
                obj.key, obj.version, "blake3", obj.blake3, digest, source="content"))

"""Ingest: preserve files in the store and record them in the ledger, in the crash-safe order.

1. Only regular, readable files are read; FIFOs, sockets, devices and broken or looping links
   are reported and skipped without being opened for reading.
2. One read computes BLAKE3-256 and SHA-256; the store then validates the SHA-256 of the bytes
   it receives while storing them.
3. Size and modification time are checked again: a file that changed is reported, not recorded.
4. ``stat`` confirms the stored object's size, SHA-256, retention and hold.
5. Only then is the event appended (event and derived state in one transaction).

A crash between 2 and 5 leaves a retained object with no event: running the same ingest again
finds it in the store and records it.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
from contextlib import nullcontext
import stat as stat_mod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, TYPE_CHECKING, cast

from custody.errors import CustodyError
from custody.settings import crash_point
from custody.ledger.canonical import printable_path
from custody.evidence.bulk import Appender, Batch, EarlyInspection, InspectionPool, Prepared, ReadAhead, inspect_unchanged
from custody.evidence.collect import Candidate as Candidate, IngestPlan as IngestPlan, IngestResult as IngestResult
from custody.evidence.collect import Inspection as Inspection, Inspector as Inspector, Status as Status, collect as collect
from custody.evidence.hashing import Digests, hash_stream
from custody.workspace import LedgerOpening, Workspace
from storage.base import ObjectStore, Retention, StagedCopy, Staging, StagingFile, UploadPlan, UploadPlanning, confirm_stored
from storage.errors import IntegrityRejected, ObjectExists, ObjectNotFound, StorageError

if TYPE_CHECKING:
    from custody.evidence.expected import Expectation
    from custody.evidence.sidecars import SidecarRules
    from custody.ledger.database import Ledger
    from custody.ledger.transaction import WriteTransaction
    from concurrent.futures import Future

class IngestProgress:
    """Callbacks an ingest reports to; the default does nothing."""

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finished(self, result: IngestResult) -> None:
        pass


def evidence_key(blake3: str) -> str:
    return f"evidence/{blake3}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Ingestor:
    """One ingest command: many files, one actor, one note."""

    def __init__(
        self,
        ledger: Ledger | LedgerOpening,
        store: ObjectStore,
        *,
        actor: str,
        role: str = "technician",
        note: str | None = None,
        retention: timedelta = timedelta(days=90),
        progress: IngestProgress | None = None,
        after_read: Callable[[str], None] | None = None,
        inspector: Inspector | None = None,
        derivation: dict[str, Any] | None = None,
        expected: Expectation | None = None,
        sidecars: SidecarRules | None = None,
        retention_starts: str = "ingest",
    ) -> None:
        self._ledger = ledger
        self.store = store
        self.actor = actor
        self.role = role
        self.note = note
        self.retention = retention
        self.retention_starts = retention_starts  # "recorded": counted from the recording's start
        self.progress = progress or IngestProgress()
        self._after_read = after_read
        self._early: Future[EarlyInspection] | None = None  # the inspection started while the file was read
        self._upload_plan: UploadPlan | None = None  # fed by the current file's read
        self._resolved: Inspection | None = None  # the current file's inspection, once known
        self._inspections = InspectionPool()
        self.batch: Appender | None = None  # the batch of files being finished (custody.evidence.bulk.Batch)
        self.inspector = inspector
        self.derivation = derivation
        self.expected = expected
        self.sidecars = sidecars
        self.host = socket.gethostname()

    @property
    def ledger(self) -> Ledger:
        """The ledger; when it was given while still being opened, waits for it the first time
        it is needed (the first file is read meanwhile)."""
        if isinstance(self._ledger, LedgerOpening):
            self._ledger = self._ledger.get()
        return self._ledger

    def run(self, paths: Sequence[str]) -> list[IngestResult]:
        """Ingest every file of ``paths``, in order. Files are read (hashed, staged, probed) by
        ``custody.evidence.bulk.ReadAhead`` a few files ahead of the one being stored and
        recorded, so that one file's storing and recording overlaps the next ones' reading."""
        plan = collect(paths)
        if self.sidecars is not None:
            plan.items += [Candidate(path, st) for path, st in self.sidecars.planned([c.path for c in plan.files])]
        if self.expected is not None:
            self.expected.planned([getattr(item, "path") for item in plan.items])
        self.progress.start(len(plan.files), plan.total_bytes)
        results: list[IngestResult] = []
        with ReadAhead(self, plan.items) as reads, Batch(self) as batch:
            finish = batch.finish if reads.enabled else self.finish
            for item in plan.items:
                if isinstance(item, IngestResult):
                    result = item
                else:
                    read = reads.take(item)
                    result = read if isinstance(read, IngestResult) else finish(read)
                results.append(result)
                self.progress.finished(result)
        absent = self.expected.absent() if self.expected is not None else []
        return results + [IngestResult(path, "absent", reason=reason) for path, reason in absent]

    def ingest_file(self, candidate: Candidate) -> IngestResult:
        read = self.read(candidate, self.likely_new(candidate.stat.st_size))
        return read if isinstance(read, IngestResult) else self.finish(read)

    def read(self, candidate: Candidate, likely_new: bool) -> Prepared | IngestResult:
        """The one read of a file: hash it (into the store's staging area, or feeding an upload
        plan, when ``likely_new``), probe it meanwhile, and check it did not change. Safe to
        run on another thread while earlier files are finished: it touches neither the ledger
        nor any stored object."""
        shown = printable_path(candidate.path)
        try:
            fd = os.open(candidate.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            return IngestResult(shown, "failed", reason=f"unreadable: {exc.strerror}")
        handle = os.fdopen(fd, "rb", buffering=0)
        try:
            read = self._read_open(handle, fd, candidate, likely_new)
        except BaseException:
            handle.close()
            raise
        if isinstance(read, IngestResult):
            handle.close()
        return read

    def _read_open(self, handle: Any, fd: int, candidate: Candidate, likely_new: bool) -> Prepared | IngestResult:
        shown = printable_path(candidate.path)
        before = os.fstat(fd)
        if not stat_mod.S_ISREG(before.st_mode) or before.st_ino != candidate.stat.st_ino:
            return IngestResult(shown, "skipped", reason="replaced by something else since it was listed")
        os.set_blocking(fd, True)
        staging = self._open_staging(before.st_size) if likely_new else None
        early = self._start_inspection(candidate.path) if likely_new else None
        store = self.store
        planning = likely_new and staging is None
        upload_plan = store.plan_upload(before.st_size) if planning and isinstance(store, UploadPlanning) else None
        sink = staging.write if staging is not None else (upload_plan.write if upload_plan else None)
        try:
            md5 = self.expected is not None and self.expected.needs_md5
            digests = hash_stream(cast(BinaryIO, handle), self.progress.advance, sink=sink, md5=md5)
        except OSError as exc:
            if staging is not None:
                staging.abort()
            return IngestResult(shown, "failed", reason=f"unreadable: read error: {exc.strerror}")
        except BaseException:
            if staging is not None:
                staging.abort()
            raise
        crash_point("read")
        staged = None
        if staging is not None:
            if digests.size == staging.size:
                staged = staging.finish()
            else:
                staging.abort()
        if self._after_read is not None:
            self._after_read(candidate.path)
        changed = self._changed(fd, candidate.path, before, digests.size)
        if changed:
            self._discard(staged)
            return IngestResult(shown, "failed", size=digests.size, reason=changed)
        return Prepared(candidate, handle, fd, before, digests, staged, upload_plan, early)

    def finish(self, read: Prepared) -> IngestResult:
        """Store (or find stored) and record a file ``read`` has hashed, in the crash-safe order.
        Runs on the thread that called ``run``, one file at a time, in the planned order."""
        with read.handle:
            digests, candidate = read.digests, read.candidate
            warning = "zero-byte file: preserved, but check that the recording is complete" if digests.size == 0 else None
            declared = self.expected.compare(candidate.path, digests) if self.expected is not None else None
            self._upload_plan, self._early, self._resolved = read.upload_plan, read.early, None
            try:
                result = self._preserve(read.handle, read.fd, candidate, read.before, digests, read.staged)
            finally:
                self._upload_plan, self._early, self._resolved = None, None, None
            result.declared = declared
            result.warning = result.warning or warning
            return result

    def transaction(self) -> WriteTransaction:
        return self.ledger.transaction()

    def abandon(self, read: Prepared) -> None:
        """Close a file read but not finished (the ingest stopped), discarding its staged copy."""
        read.handle.close()
        self._discard(read.staged)

    def _start_inspection(self, path: str) -> Future[EarlyInspection] | None:
        """Start the inspector (on another thread; ffprobe runs in other processes) now, so that
        it runs while the file is hashed rather than after. Only for a file that will likely be
        stored: its result is used only if the file proves unchanged (``inspect_unchanged``)."""
        if self.inspector is None:
            return None
        return self._inspections.submit(inspect_unchanged, self.inspector, path)

    def _inspection(self, path: str, before: os.stat_result) -> Inspection:
        """The file's inspection: the one started during its read if the file did not change
        since, else one made now (once per file)."""
        assert self.inspector is not None
        if self._resolved is None:
            early, self._early = self._early, None
            self._resolved = early.result().valid_for(before) if early is not None else None
            if self._resolved is None:  # none started, or the file changed since: inspect it now
                self._resolved = self.inspector(path)
        return self._resolved

    def _retain_until(self, path: str, before: os.stat_result) -> datetime:
        """Now plus the retention; when it counts from the recording, the start the inspection
        found (its ``recorded``) plus the retention, never less than a day ahead."""
        now = self.store.now()
        if self.retention_starts != "recorded" or self.inspector is None:
            return now + self.retention
        try:
            start = datetime.fromisoformat(str(self._inspection(path, before).event["recorded"]["start"]).replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError):
            return now + self.retention
        return max(start + self.retention, now + timedelta(days=1))

    def likely_new(self, size: int) -> bool:
        """Whether the file is probably not preserved yet, so that its bytes are worth sending to
        the store (staging, an upload plan) and probing during the one read. False when bytes of
        that size are already preserved (likely a repeat acquisition: hash first, store nothing).
        While the ledger is still being opened, True rather than wait: what turns out to be a
        repeat is discarded."""
        if isinstance(self._ledger, LedgerOpening) and not self._ledger.ready():
            return True
        return not self.ledger.size_known(size)

    def _open_staging(self, size: int) -> StagingFile | None:
        """On a store with a staging area, a staging file that receives the very chunks the one
        read hashes, so the file is read once and the bytes stored are the bytes hashed."""
        return self.store.open_staging(size) if isinstance(self.store, Staging) else None

    def _discard(self, staged: StagedCopy | None) -> None:
        if staged is not None and isinstance(self.store, Staging):
            self.store.discard_staged(staged)

    def _changed(self, fd: int, path: str, before: os.stat_result, read: int) -> str | None:
        after = os.fstat(fd)
        try:
            named = os.stat(path)
        except OSError:
            return "the file was removed or renamed while it was read; nothing recorded"
        if (
            read != before.st_size
            or after.st_size != before.st_size
            or after.st_mtime_ns != before.st_mtime_ns
            or after.st_ctime_ns != before.st_ctime_ns
        ):
            return (
                f"the file changed while it was read (size {before.st_size} -> {after.st_size}, "
                f"{read} bytes read); nothing recorded. Wait until it is no longer being written, "
                "then ingest it again"
            )
        if (named.st_dev, named.st_ino) != (before.st_dev, before.st_ino):
            return "the file was replaced while it was read; nothing recorded"
        return None

    def _source(self, candidate: Candidate, before: os.stat_result) -> dict[str, Any]:
        mtime = datetime.fromtimestamp(before.st_mtime_ns // 1_000_000_000, timezone.utc)
        return {
            "path": printable_path(os.path.abspath(candidate.path)),
            "name": printable_path(os.path.basename(candidate.path)),
            "size": before.st_size,
            "mtime": _iso(mtime),
            "host": self.host,
        }

    def _common(self, path: str) -> dict[str, Any]:
        common: dict[str, Any] = {"note": self.note} if self.note else {}
        declared = self.expected.verdict(path) if self.expected is not None else None
        if declared is not None:
            common["declared"] = declared
        return common

    def _preserve(
        self, handle: io.FileIO, fd: int, candidate: Candidate, before: os.stat_result, digests: Digests, staged: StagedCopy | None = None
    ) -> IngestResult:
        """Store (or find stored) and record one hashed file. ``staged`` is a copy already in
        the store's staging area, made while the file was hashed and proven unchanged since;
        it is committed instead of sending the bytes again, or discarded."""
        try:
            return self._preserve_staged(handle, fd, candidate, before, digests, staged)
        finally:
            self._discard(staged)  # a no-op once committed

    def _preserve_staged(
        self, handle: io.FileIO, fd: int, candidate: Candidate, before: os.stat_result, digests: Digests, staged: StagedCopy | None
    ) -> IngestResult:
        shown = printable_path(candidate.path)
        result = IngestResult(shown, "recorded", digests.blake3, digests.sha256, digests.size)
        known = (self.batch or self.ledger).evidence_row(digests.blake3)
        if known is not None:
            return self._acquired(result, candidate, before, known)
        key = evidence_key(digests.blake3)
        result.store_key = key
        retention = Retention("COMPLIANCE", self._retain_until(candidate.path, before))
        recovered = False
        try:
            info = self.store.stat(key)
            recovered = True
            if info.sha256 not in (None, digests.sha256) or info.size != digests.size:
                result.status = "failed"
                result.reason = (
                    f"the store already holds a different object under {key} "
                    f"(size {info.size}, SHA-256 {info.sha256}); nothing recorded; run 'custody audit'"
                )
                return result
            if info.retention is None or info.retention.until < retention.until:
                info = self.store.extend_retention(key, info.version, retention.until)
        except ObjectNotFound:
            os.lseek(fd, 0, os.SEEK_SET)
            try:
                if staged is not None and isinstance(self.store, Staging):
                    info = self.store.commit_staged(
                        staged, key, sha256=digests.sha256, retention=retention, metadata={"blake3": digests.blake3}
                    )
                elif self._upload_plan is not None and isinstance(self.store, UploadPlanning):
                    info = self.store.put(
                        key,
                        handle,
                        digests.size,
                        sha256=digests.sha256,
                        retention=retention,
                        metadata={"blake3": digests.blake3},
                        plan=self._upload_plan,  # the per-part digests of the hash pass
                    )
                else:
                    info = self.store.put(
                        key, handle, digests.size, sha256=digests.sha256, retention=retention, metadata={"blake3": digests.blake3}
                    )
            except IntegrityRejected as exc:
                result.status = "failed"
                result.reason = f"the file changed between reads; nothing recorded ({exc})"
                return result
            except OSError as exc:
                result.status = "failed"
                result.reason = f"unreadable: read error: {exc.strerror}"
                return result
        crash_point("stored")
        confirm_stored(info, retention=retention, legal_hold=False, size=digests.size, sha256=digests.sha256)
        changed = self._changed(fd, candidate.path, before, digests.size)
        if changed:
            result.status = "failed"
            result.reason = changed + " (the bytes read were preserved, but are not recorded)"
            return result
        assert info.retention is not None
        inspection = self._inspect(candidate.path, before, digests, info.retention)
        crash_point("attachments")
        with nullcontext(self.batch) if self.batch is not None else self.transaction() as tx:
            known = tx.evidence_row(digests.blake3)
            if known is not None:
                event = tx.append(
                    "acquired",
                    actor=self.actor,
                    role=self.role,
                    subject={"evidence": digests.blake3},
                    details={"source": self._source(candidate, before), **self._common(candidate.path)},
                )
                result.status = "already-stored"
                result.seq = event.seq
                return result
            assert info.retention is not None
            details: dict[str, Any] = {
                "source": self._source(candidate, before),
                "blake3": digests.blake3,
                "sha256": digests.sha256,
                "size": digests.size,
                "store": {"location": self.store.describe(), "key": key, "version": info.version},
                "retention": {"mode": info.retention.mode, "until": _iso(info.retention.until), "category": "unflagged"},
                "legal_hold": info.legal_hold,
                **self._common(candidate.path),
            }
            if inspection is not None:
                details["media"] = inspection[0]
                if inspection[1]:
                    details["attachments"] = inspection[1]
                details.update({k: v for k, v in inspection[2].items() if k not in details})
            if self.derivation is not None:
                details["derived_from"] = self.derivation
            if recovered:
                details["recovered"] = "object found in the store without an ingest event"
            event = tx.append(
                "ingested", actor=self.actor, role=self.role, subject={"evidence": digests.blake3}, details=details
            )
            tx.add_evidence(
                blake3=digests.blake3,
                sha256=digests.sha256,
                size=digests.size,
                store_key=key,
                version=info.version,
                seq=event.seq,
            )
            crash_point("before-commit")
        if self.batch is None:
            crash_point("recorded")  # in a batch: once the batch is committed (custody.evidence.bulk.Batch)
        result.seq = event.seq
        return result

    def _inspect(
        self, path: str, before: os.stat_result, digests: Digests, retention: Retention
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        """Run the inspector and store its attachments; never prevents preservation."""
        if self.inspector is None:
            return None
        inspection = self._inspection(path, before)
        stored: dict[str, Any] = {}
        for kind, data in sorted(inspection.attachments.items()):
            key = f"{kind}/{digests.blake3}"
            sha = hashlib.sha256(data).hexdigest()
            try:
                self.store.put(
                    key,
                    io.BytesIO(data),
                    len(data),
                    sha256=sha,
                    retention=retention,
                    metadata={"evidence": digests.blake3},
                )
            except ObjectExists:
                # left by an earlier run that stopped before recording (crash recovery): its
                # lock dates from that run, so it is extended to the evidence's, then confirmed
                existing = self.store.stat(key)
                if existing.sha256 not in (None, sha):
                    raise
                if existing.retention is None or existing.retention.until < retention.until:
                    existing = self.store.extend_retention(key, existing.version, retention.until)
                confirm_stored(existing, retention=retention, legal_hold=False, size=len(data), sha256=sha)
            stored[kind] = {"key": key, "sha256": sha, "size": len(data)}
        return inspection.details, stored, inspection.event

    def _acquired(
        self, result: IngestResult, candidate: Candidate, before: os.stat_result, known: Mapping[str, Any]
    ) -> IngestResult:
        event = (self.batch or self.ledger).append(
            "acquired",
            actor=self.actor,
            role=self.role,
            subject={"evidence": result.blake3 or ""},
            details={"source": self._source(candidate, before), **self._common(candidate.path)},
        )
        result.status = "already-stored"
        result.store_key = known["store_key"]
        result.seq = event.seq
        return result


def ingest_paths(
    workspace: Workspace,
    paths: Sequence[str],
    *,
    incident: str | None = None,
    camera: str | None = None,
    officer: str | None = None,
    **options: Any,
) -> list[IngestResult]:
    """Ingest ``paths`` (custody.home.Workspace), link what was preserved to ``incident`` (which
    must exist before anything is read), and sign a checkpoint if anything was appended."""
    from custody.cases.incident_state import require_incident
    from custody.cases.incidents import link_evidence
    from custody.cases.retention import DEFAULT_CATEGORY, load_categories

    if incident is not None:
        require_incident(workspace.ledger, incident)
    category = load_categories(workspace.settings.config)[DEFAULT_CATEGORY]
    duration = category.duration
    assert duration is not None
    settings = workspace.settings
    opening = getattr(workspace, "ledger_or_opening", None)
    ingestor = Ingestor(
        opening() if opening is not None else workspace.ledger,
        workspace.store,
        actor=settings.actor,
        role=settings.role,
        retention=duration,
        retention_starts=category.starts,
        **options,
    )
    try:
        results = ingestor.run(paths)
        if ingestor.sidecars is not None:
            ingestor.sidecars.link(workspace, results)
        if incident is not None:
            for result in results:
                if result.blake3 and result.status in ("recorded", "already-stored"):
                    link_evidence(workspace, result.blake3, incident, camera=camera, officer=officer, seal=False)
    except BaseException:
        try:
            workspace.seal()
        except (CustodyError, StorageError):
            pass  # the error that stopped the ingest is the one to report
        raise
    crash_point("before-seal")
    try:
        workspace.seal()
    except (CustodyError, StorageError) as exc:
        raise CheckpointNotSigned(results, exc) from exc
    return results


class CheckpointNotSigned(CustodyError):
    """The files were preserved and their events appended, but the checkpoint that ends the
    command could not be signed or stored. Carries the results and the cause's exit code."""

    def __init__(self, results: list[IngestResult], cause: Exception) -> None:
        self.results = results
        self.exit_code = getattr(cause, "exit_code", 5)
        done = [r for r in results if r.seq is not None and r.blake3]
        lines = [f"  event {r.seq}: {r.path} (BLAKE3 {r.blake3})" for r in done[:20]]
        if len(done) > 20:
            lines.append(f"  ... and {len(done) - 20} more (see 'custody log')")
        if done:
            head = (
                f"{len(done)} file(s) WERE stored and recorded in the ledger; they are preserved:\n"
                + "\n".join(lines)
                + "\nbut the checkpoint that seals them could not be signed: "
            )
        else:
            head = "nothing new was recorded, and the checkpoint could not be signed: "
        super().__init__(
            head + f"{cause}\nOnce that is fixed, run 'custody ledger checkpoint' to sign what was recorded."
        )

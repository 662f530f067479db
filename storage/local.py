"""The embedded default store: immutable files in a directory, locks kept by this program.

Layout under the store's root::

    objects/<key>          the stored bytes, mode 0444, never rewritten
    meta/<key>.jsonl       append-only record of the object: the put (size, sha256, version,
                           metadata), then every retention extension, hold change and deletion
    tmp/                   staging files, on the same filesystem so that a rename is atomic;
                           each locked by its writer, so that those of killed writers can be
                           told apart and swept (``storage.staging``)

Writes go to a temporary file that is fsynced, then hard-linked into place (a link never
replaces an existing name), then the directory is fsynced. WORM here is enforced by this
program only: an operator with filesystem privileges can still remove files, which an audit
against the ledger and the signed checkpoints will then report.
"""

from __future__ import annotations

import builtins

import errno
import fcntl
import hashlib
import io
import json
import os
import re
import stat as stat_mod
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

from storage import staging as staging_area
from storage.base import Capabilities, LockProbe, ObjectInfo, ProgressCallback, Retention, format_utc, parse_utc
from storage.errors import (
    IntegrityRejected,
    ObjectExists,
    ObjectNotFound,
    RetentionViolation,
    StorageError,
    StorageUnavailable,
)
from storage.staging import Leftover, StagedCopy, StagingFile

__all__ = ["LocalStore", "Leftover", "StagedCopy", "StagingFile"]

CHUNK = 1 << 20


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """Content stored as read-only files under ``root``; see the module docstring."""

    capabilities = Capabilities(
        worm="program",
        description=(
            "local directory: retention and holds are enforced by this program only; "
            "anyone with filesystem privileges can still delete files (audits detect it)"
        ),
    )

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"
        self._deferred_dirs: set[Path] | None = None

    def _sync_dir(self, path: Path) -> None:
        if self._deferred_dirs is not None:
            self._deferred_dirs.add(path)
        else:
            _fsync_dir(path)

    @contextmanager
    def directory_syncs_deferred(self) -> Iterator[Callable[[], None]]:
        """Within it, the directory fsyncs that make new objects' names durable (``put``,
        ``commit_staged``) are collected instead of done one by one; the function it yields does
        them, each directory once, and must be called before anything relies on those objects
        being durable (before they are recorded). Leaving does the ones still pending. The
        objects' bytes and lock records are still fsynced before they are linked under their
        keys. For the one thread that stores; a bulk ingest uses it for a batch of files."""
        self._deferred_dirs = set()

        def flush() -> None:
            pending, self._deferred_dirs = self._deferred_dirs or set(), set()
            try:
                for directory in sorted(pending):
                    _fsync_dir(directory)
            except OSError as exc:
                raise StorageUnavailable(f"writing to the local store {self.root} failed: {exc}") from exc

        try:
            yield flush
            flush()
        finally:
            self._deferred_dirs = None

    @classmethod
    def create(cls, root: Path | str) -> LocalStore:
        """Create the directory layout if missing (idempotent) and return the store."""
        store = cls(root)
        try:
            for directory in (store._objects, store._meta, store._tmp):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot create the local store at {store.root}: {exc.strerror}; "
                "choose a writable data directory with --home or CUSTODY_HOME"
            ) from exc
        return store

    def ensure_bucket(self, create: bool = False, default_retention_days: int = 90) -> None:
        """See ``BucketSetup.ensure_bucket``: the store's directory layout is its bucket. With
        ``create`` a missing layout is made (``create``); without it a missing one raises
        ``StorageUnavailable``. There is no default retention: every put names its own."""
        if create:
            LocalStore.create(self.root)
        self._check()

    def describe(self) -> str:
        return f"file://{self.root}"

    def _check(self) -> None:
        if not self._objects.is_dir():
            raise StorageUnavailable(
                f"no local store at {self.root}; run 'custody init' first"
            )

    def _paths(self, key: str) -> tuple[Path, Path]:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"invalid object key {key!r}")
        return self._objects / key, self._meta / (key + ".jsonl")

    def _records(self, meta: Path) -> list[dict[str, Any]]:
        try:
            with meta.open("r", encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise StorageError(f"unreadable lock record {meta}: {exc}") from exc

    def _append(self, meta: Path, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(meta, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _info(self, key: str, records: list[dict[str, Any]]) -> ObjectInfo:
        put = records[0]
        until = parse_utc(put["retain_until"])
        mode = put["mode"]
        hold = bool(put.get("legal_hold", False))
        for record in records[1:]:
            if record["op"] == "retain":
                candidate = parse_utc(record["until"])
                until = max(until, candidate)
            elif record["op"] == "hold":
                hold = bool(record["on"])
        return ObjectInfo(
            key=key,
            version=put["version"],
            size=int(put["size"]),
            sha256=put["sha256"],
            retention=Retention(mode=mode, until=until),
            legal_hold=hold,
            metadata=dict(put.get("metadata", {})),
            stored_at=parse_utc(put["time"]) if isinstance(put.get("time"), str) else None,
        )

    def _current(self, key: str, version: str | None) -> tuple[ObjectInfo, Path, Path]:
        self._check()
        data, meta = self._paths(key)
        records = self._records(meta)
        if not records or any(r["op"] == "delete" for r in records) or not data.exists():
            raise ObjectNotFound(key, version)
        info = self._info(key, records)
        if version is not None and version != info.version:
            raise ObjectNotFound(key, version)
        return info, data, meta

    def put(
        self,
        key: str,
        source: BinaryIO,
        size: int,
        *,
        sha256: str,
        retention: Retention,
        legal_hold: bool = False,
        metadata: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        self._check()
        data, _ = self._paths(key)
        if data.exists():
            raise ObjectExists(key)
        staged = self._stage_stream(key, source, size, sha256, progress)
        return self.commit_staged(staged, key, sha256=sha256, retention=retention, legal_hold=legal_hold, metadata=metadata)

    def _new_staging_file(self) -> staging_area.HeldFile:
        try:
            return staging_area.create(self._tmp, ".part")
        except OSError as exc:
            raise StorageUnavailable(f"cannot write to the local store {self.root}: {exc.strerror}") from exc

    def _stage_stream(
        self, key: str, source: BinaryIO, size: int, sha256: str, progress: ProgressCallback | None
    ) -> StagedCopy:
        """Write the stream to a staging file, hashing what is received; reject a mismatch."""
        held = self._new_staging_file()
        tmp, fd = held.path, held.fd
        digest = hashlib.sha256()
        received = 0
        try:
            try:
                view = memoryview(bytearray(CHUNK))
                readinto = getattr(source, "readinto", None)
                while True:
                    if readinto is not None:
                        count = readinto(view)
                        chunk: bytes | memoryview = view[:count] if count else b""
                    else:
                        chunk = source.read(CHUNK)
                        count = len(chunk)
                    if not count:
                        break
                    digest.update(chunk)
                    _write_all(fd, chunk)
                    received += count
                    if progress is not None:
                        progress(count)
                os.fsync(fd)
            except BaseException:
                held.release()
                raise
        except OSError as exc:
            raise StorageUnavailable(f"writing {key} to the local store failed: {exc}") from exc
        if received != size or digest.hexdigest() != sha256.lower():
            held.release()
            raise IntegrityRejected(
                f"the local store received {received} bytes with SHA-256 {digest.hexdigest()} "
                f"for {key}, but {size} bytes with SHA-256 {sha256.lower()} were declared; "
                "nothing was stored (was the source changed while it was read?)"
            )
        return StagedCopy(tmp, size, held)

    def open_staging(self, size: int) -> StagingFile:
        """A new file in the staging area for the caller to write, in order, with exactly the
        chunks it hashes (``hash_stream``'s sink). Nothing is readable under any key until
        ``commit_staged``."""
        self._check()
        return StagingFile.open(self._tmp, size, self.root)

    def discard_staged(self, staged: StagedCopy) -> None:
        staged.release()

    def sweep_staging(self, remove: bool = True) -> builtins.list[Leftover]:
        """The staging files left by writers that are gone (killed), removed unless ``remove``
        is False; a live writer's files are never touched (``storage.staging``)."""
        return staging_area.sweep(self._tmp, remove)

    def commit_staged(
        self,
        staged: StagedCopy,
        key: str,
        *,
        sha256: str,
        retention: Retention,
        legal_hold: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Make a staged copy the object under ``key`` (read-only, never overwriting), with its
        lock record, then fsync the directories. The staging file is gone afterwards."""
        data, meta = self._paths(key)
        try:
            if staged.path.stat().st_size != staged.size:
                raise IntegrityRejected(f"the staged copy for {key} changed size; nothing was stored")
            os.chmod(staged.path, 0o444)
            self._link_meta(key, meta, staged.size, sha256.lower(), retention, legal_hold, metadata)
            data.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(staged.path, data)
            except FileExistsError as exc:
                raise ObjectExists(key) from exc
            self._sync_dir(data.parent)
        except OSError as exc:
            raise StorageUnavailable(f"writing {key} to the local store failed: {exc}") from exc
        finally:
            staged.release()
        return self.stat(key)

    def _link_meta(
        self,
        key: str,
        meta: Path,
        size: int,
        sha256: str,
        retention: Retention,
        legal_hold: bool,
        metadata: Mapping[str, str] | None,
    ) -> None:
        """Write the object's first lock record, unless an interrupted put already did: then
        its retention is extended to ``retention`` and its hold put on if asked, so that what
        ``stat`` reports afterwards is at least what this put asked for."""
        existing = self._records(meta)
        if existing:
            if existing[0]["sha256"] != sha256 or int(existing[0]["size"]) != size:
                raise ObjectExists(key)
            info = self._info(key, existing)
            assert info.retention is not None
            if retention.until.replace(microsecond=0) > info.retention.until:
                self._append(meta, {"op": "retain", "until": format_utc(retention.until), "time": format_utc(self.now())})
            if legal_hold and not info.legal_hold:
                self._append(meta, {"op": "hold", "on": True, "time": format_utc(self.now())})
            return
        record = {
            "op": "put",
            "version": sha256[:32],
            "size": size,
            "sha256": sha256,
            "mode": retention.mode,
            "retain_until": format_utc(retention.until),
            "legal_hold": legal_hold,
            "metadata": dict(metadata or {}),
            "time": format_utc(self.now()),
        }
        meta.parent.mkdir(parents=True, exist_ok=True)
        staged = staging_area.create(self._tmp, ".meta")
        try:
            _write_all(staged.fd, (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode())
            os.fsync(staged.fd)
            os.link(staged.path, meta)
        except FileExistsError as exc:
            raise ObjectExists(key) from exc
        finally:
            staged.release()
        self._sync_dir(meta.parent)

    def stat(self, key: str, version: str | None = None) -> ObjectInfo:
        info, data, _ = self._current(key, version)
        actual = data.stat().st_size
        if actual != info.size:
            return ObjectInfo(
                key=info.key,
                version=info.version,
                size=actual,
                sha256=info.sha256,
                retention=info.retention,
                legal_hold=info.legal_hold,
                metadata=info.metadata,
                stored_at=info.stored_at,
            )
        return info

    def open(self, key: str, version: str | None = None) -> BinaryIO:
        _, data, _ = self._current(key, version)
        try:
            return cast(BinaryIO, data.open("rb"))
        except FileNotFoundError as exc:
            raise ObjectNotFound(key, version) from exc
        except OSError as exc:
            raise StorageError(f"cannot read stored object {key}: {exc.strerror}") from exc

    def local_path(self, key: str, version: str | None = None) -> Path:
        """The file holding the object's bytes (for memory-mapped verification)."""
        _, data, _ = self._current(key, version)
        return data

    def extend_retention(self, key: str, version: str, until: datetime) -> ObjectInfo:
        info, _, meta = self._current(key, version)
        assert info.retention is not None
        if until < info.retention.until:
            raise RetentionViolation(
                f"refusing to shorten the retention of {key} from {format_utc(info.retention.until)} "
                f"to {format_utc(until)}: retention can only be extended"
            )
        if until > info.retention.until:
            self._append(meta, {"op": "retain", "until": format_utc(until), "time": format_utc(self.now())})
        return self.stat(key, version)

    def set_legal_hold(self, key: str, version: str, on: bool) -> ObjectInfo:
        info, _, meta = self._current(key, version)
        if info.legal_hold != on:
            self._append(meta, {"op": "hold", "on": on, "time": format_utc(self.now())})
        return self.stat(key, version)

    def delete(self, key: str, version: str) -> None:
        info, data, meta = self._current(key, version)
        assert info.retention is not None
        if info.legal_hold:
            raise RetentionViolation(f"refusing to delete {key}: it is under a legal hold")
        if info.retention.until > self.now():
            raise RetentionViolation(
                f"refusing to delete {key}: retained until {format_utc(info.retention.until)}"
            )
        self._append(meta, {"op": "delete", "time": format_utc(self.now())})
        os.chmod(data, stat_mod.S_IWUSR | stat_mod.S_IRUSR)
        data.unlink()
        _fsync_dir(data.parent)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._check()
        found: list[str] = []
        # only the folder the prefix names can hold its keys (checkpoints/000.. walks checkpoints/)
        start = self._objects / prefix.rpartition("/")[0] if "/" in prefix else self._objects
        for directory, _dirs, files in os.walk(start):
            for name in files:
                key = os.path.relpath(os.path.join(directory, name), self._objects)
                if key.startswith(prefix):
                    found.append(key)
        for key in sorted(found):
            records = self._records(self._meta / (key + ".jsonl"))
            if not records:
                st = (self._objects / key).stat()
                yield ObjectInfo(key, "", st.st_size, None, None, False, {},
                                 datetime.fromtimestamp(st.st_mtime, timezone.utc))
                continue
            yield self._info(key, records)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def lock_self_test(self) -> builtins.list[LockProbe]:
        """The local store's locks are this program's own, so the probes exercise its verbs;
        ``capabilities.worm == "program"`` says that no server stands behind them."""
        self.sweep_canaries()
        data = uuid.uuid4().bytes
        key = f"canary/{uuid.uuid4().hex}"
        info = self.put(
            key,
            io.BytesIO(data),
            len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            retention=Retention("COMPLIANCE", self.now() + timedelta(seconds=60)),
            metadata={"purpose": "lock-self-test"},
        )
        assert info.retention is not None
        earlier = info.retention.until - timedelta(seconds=30)
        probes: builtins.list[LockProbe] = []
        attempts = (
            ("delete-version", lambda: self.delete(key, info.version)),
            ("shorten-retention", lambda: self.extend_retention(key, info.version, earlier)),
            ("switch-to-governance", lambda: self._refuse_mode_change(key)),
        )
        for action, attempt in attempts:
            try:
                attempt()
            except RetentionViolation as exc:
                probes.append(LockProbe(action, True, f"refused by this program: {exc}"))
            else:
                probes.append(LockProbe(action, False, "the local store allowed it"))
        return probes

    def sweep_canaries(self, limit: int = 200) -> int:
        """Delete earlier self-tests' canaries (``canary/<32 hex>``) whose retention has passed
        and that have no hold, at most ``limit``; the number deleted. Nothing else is touched."""
        removed = 0
        for info in self.list("canary/"):
            if removed >= limit:
                break
            ours = re.fullmatch(r"canary/[0-9a-f]{32}", info.key) is not None
            if not ours or info.legal_hold or info.retention is None or info.retention.until > self.now():
                continue
            try:
                self.delete(info.key, info.version)
            except StorageError:
                continue
            removed += 1
        return removed

    def _refuse_mode_change(self, key: str) -> None:
        raise RetentionViolation(f"{key}: the local store keeps every object in COMPLIANCE mode")


def _write_all(fd: int, chunk: bytes | memoryview) -> None:
    view = memoryview(chunk)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            raise
        view = view[written:]

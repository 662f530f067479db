"""The public log: the ledger's Merkle tree hashes as C2SP tlog-tiles (https://c2sp.org/tlog-tiles).

``publish`` writes, into a directory anyone can mirror or serve statically:

* ``checkpoint``: the latest signed checkpoint with the witnesses' cosignature lines;
* ``tile/<L>/<N>`` and ``tile/<L>/<N>.p/<W>``: 256 (or W < 256) SHA-256 hashes of 32 bytes.
  Hash i of tile N at level L is the Merkle tree hash of leaves
  ``[(N*256 + i) * 256**L, (N*256 + i + 1) * 256**L)``, which is the ledger's stored node
  ``(level 8L, index N*256 + i)``. N is written in 3-digit path elements, all but the last
  prefixed with ``x`` (1234067 -> ``x001/x234/067``).

Only hashes are published, never event contents (no ``tile/entries``). Publishing is
incremental: the sizes already published (the ``checkpoint`` file's size) tell which full tiles
exist; only tiles that became full and the new partial tiles are written. Tiles are immutable:
never rewritten; every one is durable before the checkpoint that refers to them is replaced,
last, so a reader never sees a checkpoint whose tiles are missing. Before anything is written,
the published checkpoint's root must be this ledger's root at that size (a ledger that no
longer extends what it published is refused).

Where the log goes is a ``PublicLog``: ``DirectoryLog`` here (each tile written to a temporary
file and renamed, one ``sync``, then the checkpoint fsynced and renamed), or an S3 prefix
(``custody.anchors.public_s3``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from custody.errors import BadInput, Finding, FindingKind, LedgerCorrupt
from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.ledger.database import Ledger
from custody.ledger import queries

TILE_WIDTH = 256
TILE_HEIGHT = 8


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` with N in x-prefixed 3-digit elements."""
    digits = f"{index:03d}"
    if len(digits) % 3:
        digits = "0" * (3 - len(digits) % 3) + digits
    elements = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    encoded = "/".join([f"x{e}" for e in elements[:-1]] + [elements[-1]])
    path = f"tile/{level}/{encoded}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


@dataclass(frozen=True)
class TileSpec:
    level: int
    index: int
    width: int

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)


def tiles_between(old_size: int, new_size: int) -> Iterator[TileSpec]:
    """The tiles a log of ``new_size`` has that one of ``old_size`` did not: full tiles that
    completed since, and the partial tiles of ``new_size`` that are new."""
    level = 0
    while new_size >> (TILE_HEIGHT * level) > 0:
        old_count = old_size >> (TILE_HEIGHT * level)
        new_count = new_size >> (TILE_HEIGHT * level)
        if old_count != new_count:
            for index in range(old_count // TILE_WIDTH, new_count // TILE_WIDTH):
                yield TileSpec(level, index, TILE_WIDTH)
            width = new_count % TILE_WIDTH
            if width:
                yield TileSpec(level, new_count // TILE_WIDTH, width)
        level += 1


@dataclass
class Publication:
    directory: str
    size: int
    previous_size: int
    tiles_written: int
    cosignatures: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "size": self.size,
            "previous_size": self.previous_size,
            "tiles_written": self.tiles_written,
            "cosignatures": self.cosignatures,
        }


def _write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PublicLog(Protocol):
    """Where a tlog-tiles log is published."""

    def where(self, name: str) -> str:
        """``name`` (``checkpoint``, a tile path) as the place it is published, for messages."""
        ...

    def read_checkpoint(self) -> bytes | None:
        """The published checkpoint file (at most 64 KiB of it), None if there is none."""
        ...

    def write_tiles(self, tiles: Iterable[tuple[str, bytes]]) -> int:
        """Write each (path, bytes) tile that is not there yet and return how many were
        written; when it returns, every one is durable and readable."""
        ...

    def write_checkpoint(self, data: bytes) -> None:
        """Replace the checkpoint file, atomically."""
        ...


class DirectoryLog:
    """A tlog-tiles log in a local directory (to serve, or mirror, from there)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def where(self, name: str) -> str:
        return str(self.directory / name)

    def read_checkpoint(self) -> bytes | None:
        path = self.directory / "checkpoint"
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise BadInput(f"{path} is not a regular file; publish into a directory custody made")
        try:
            with path.open("rb") as handle:
                return handle.read(1 << 16)
        except FileNotFoundError:
            return None

    def write_tiles(self, tiles: Iterable[tuple[str, bytes]]) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        written = 0
        made: set[Path] = set()
        for name, data in tiles:
            target = self.directory / name
            if target.exists():
                continue
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            _write(target, data, fsync=False)
            written += 1
        if written:
            os.sync()
        return written

    def write_checkpoint(self, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _write(self.directory / "checkpoint", data)
        _fsync_dir(self.directory)


def _published(log: PublicLog, origin: str) -> tuple[int, bytes] | None:
    data = log.read_checkpoint()
    if data is None:
        return None
    where = log.where("checkpoint")
    body = data.decode("utf-8", "replace").partition("\n\n")[0] + "\n"
    try:
        checkpoint = notes.parse_checkpoint(body)
    except notes.TlogError as exc:
        raise BadInput(f"{where} is not a checkpoint ({exc}); publish into an empty place or one custody made") from exc
    if checkpoint.origin != origin:
        raise BadInput(f"{where} is the checkpoint of another log ({checkpoint.origin!r}); publish each log into its own place")
    return checkpoint.size, checkpoint.root


def _tile_data(ledger: Ledger, specs: list[TileSpec]) -> Iterator[tuple[TileSpec, bytes]]:
    """Each tile's bytes; the tiles of one level are contiguous, so each level is one query
    (``custody.ledger.queries.node_hash_runs``)."""
    levels = sorted({spec.level for spec in specs})
    runs = []
    for level in levels:
        at_level = [spec for spec in specs if spec.level == level]
        runs.append((TILE_HEIGHT * level, at_level[0].index * TILE_WIDTH, at_level[-1].index * TILE_WIDTH + at_level[-1].width))
    for level, batches in zip(levels, queries.node_hash_runs(ledger, runs, 8 * TILE_WIDTH), strict=True):
        pending: list[str] = []
        for spec in (spec for spec in specs if spec.level == level):
            while len(pending) < spec.width:
                pending.extend(next(batches))
            yield spec, bytes.fromhex("".join(pending[:spec.width]))
            del pending[:spec.width]
        for _ in batches:
            pass


def publish(ledger: Ledger, log: PublicLog | Path, size: int, note: str, cosignature_lines: list[str]) -> Publication:
    """Publish the tree of ``size`` (whose signed checkpoint is ``note``) into ``log`` (a
    directory given as a ``Path``, or any ``PublicLog``)."""
    if isinstance(log, Path):
        log = DirectoryLog(log)
    checkpoint = notes.parse_checkpoint(note.partition("\n\n")[0] + "\n")
    previous = _published(log, checkpoint.origin)
    old_size = 0
    if previous is not None:
        old_size, old_root = previous
        if old_size > size:
            raise LedgerCorrupt([Finding(
                FindingKind.LEDGER_CORRUPT, log.where("checkpoint"),
                f"the published log has {old_size} entries but this ledger's checkpoint has {size}: "
                "the ledger was rolled back or truncated",
            )])
        ours = ledger.with_nodes(lambda nodes: tree.root(nodes, old_size))
        if ours != old_root:
            raise LedgerCorrupt([Finding(
                FindingKind.LEDGER_CORRUPT, log.where("checkpoint"),
                f"the published checkpoint of size {old_size} has another root than this ledger at that size: "
                "the ledger no longer extends what was published",
                "sha256", old_root.hex(), ours.hex(),
            )])
    tiles = ((spec.path, data) for spec, data in _tile_data(ledger, list(tiles_between(old_size, size))))
    written = log.write_tiles(tiles)
    log.write_checkpoint((note + "".join(cosignature_lines)).encode("utf-8"))
    return Publication(log.where(""), size, old_size, written, len(cosignature_lines))


def publish_checkpoint(ledger: Ledger, log: PublicLog | Path, size: int, note: str) -> Publication:
    """``publish`` with the cosignatures recorded for the checkpoint of ``size``."""
    from custody.anchors import records

    lines = [a.body for a in records.anchors(ledger, size=size, kind=records.COSIGNATURE)]
    return publish(ledger, log, size, note, lines)

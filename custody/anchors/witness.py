"""A C2SP tlog-witness (https://c2sp.org/tlog-witness): ``custody witness serve``.

A witness directory holds:

* ``witness.key`` (mode 0600) and ``witness.vkey``: the cosigner key (``custody.anchors.cosign``);
* ``logs``: one log verifier key per line (C2SP vkey, Ed25519, type 0x01); the key's name is the
  log's origin. Several keys may name one origin (a log whose key was rotated);
* ``state/<sha256(origin)>.json``: per log, the latest checkpoint this witness cosigned;
* ``refused/``: requests with a valid log signature that were refused (409 or 422): evidence of
  a log that rolled back or forked.

``POST /add-checkpoint`` takes the old size line, the consistency proof lines, an empty line and
the signed checkpoint, and answers as the specification says: 404 unknown origin, 403 no valid
signature by a known key, 400 malformed or old size larger than the checkpoint, 409 with the
stored size (``text/x.tlog.size``) when the old size is not the one held (or, at equal sizes,
the roots differ), 422 when the consistency proof does not verify, else 200 with one
``cosignature/v1`` line. Checking the old size and persisting the new checkpoint happen under
one lock (a thread lock and an ``flock`` on the directory), and the state file is written to a
temporary file, fsynced, renamed and the directory fsynced before the answer is sent.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final

from custody.anchors.cosign import Cosigner, CosignatureError
from custody.errors import BadInput, ConfigError
from custody.ledger import checkpoint as notes
from custody.ledger import tree

MAX_REQUEST: Final = 1 << 16
MAX_PROOF_LINES: Final = 63
SIZE_TYPE: Final = "text/x.tlog.size"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def _text(status: int, message: str) -> Answer:
    return Answer(status, (message + "\n").encode("utf-8"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, rename it over ``path``
    and fsync the directory: ``path`` holds either the old or the new bytes, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class Request:
    old: int
    proof: tuple[bytes, ...]
    note: str


def parse_request(body: bytes) -> Request:
    """Parse an add-checkpoint body; ``BadInput`` when malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput("the request is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise BadInput("the request has no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old "):
        raise BadInput("the request does not start with an old size line")
    digits = first[4:]
    if not digits.isascii() or not digits.isdigit() or (digits != "0" and digits.startswith("0")) or len(digits) > 20:
        raise BadInput("the old size is not a decimal without leading zeroes")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise BadInput(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except ValueError as exc:
            raise BadInput("a consistency proof line is not base64") from exc
        if len(value) != tree.HASH_SIZE:
            raise BadInput("a consistency proof line is not a 32-byte hash")
        proof.append(value)
    return Request(int(digits), tuple(proof), note)


@dataclass
class LogState:
    origin: str
    size: int
    root: bytes
    checkpoint: str

    def to_json(self) -> bytes:
        record = {
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode("ascii"),
            "checkpoint": self.checkpoint,
            "updated": int(time.time()),
        }
        return (json.dumps(record, sort_keys=True, indent=1) + "\n").encode("utf-8")


class WitnessDirectory:
    """The files of one witness (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def key_path(self) -> Path:
        return self.path / "witness.key"

    @property
    def vkey_path(self) -> Path:
        return self.path / "witness.vkey"

    @property
    def logs_path(self) -> Path:
        return self.path / "logs"

    def init(self, name: str) -> tuple[str, bool]:
        """Create the directory and a cosigner key named ``name`` unless one exists. Returns
        (verifier key, created)."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.path / "state").mkdir(exist_ok=True)
        (self.path / "refused").mkdir(exist_ok=True)
        if self.key_path.exists():
            return self.cosigner().verifier.to_text(), False
        try:
            signer = Cosigner.generate(name)
        except CosignatureError as exc:
            raise BadInput(f"cannot name a witness {name!r}: {exc}") from exc
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(signer.to_text() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        write_atomically(self.vkey_path, (signer.verifier.to_text() + "\n").encode())
        return signer.verifier.to_text(), True

    def cosigner(self) -> Cosigner:
        try:
            return Cosigner.from_text(self.key_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"no witness key at {self.key_path}; run 'custody witness init NAME'") from exc
        except (OSError, CosignatureError) as exc:
            raise ConfigError(f"the witness key {self.key_path} is unusable: {exc}") from exc

    def log_keys(self) -> dict[str, list[notes.Verifier]]:
        """The configured logs: origin -> its verifier keys."""
        try:
            lines = self.logs_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return {}
        logs: dict[str, list[notes.Verifier]] = {}
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                verifier = notes.Verifier.from_text(line)
            except notes.TlogError as exc:
                raise ConfigError(f"{self.logs_path}, line {number}: not a log verifier key: {exc}") from exc
            logs.setdefault(verifier.name, []).append(verifier)
        return logs

    def add_log(self, vkey: str) -> bool:
        """Add a log verifier key; False when it is already there."""
        try:
            verifier = notes.Verifier.from_text(vkey.strip())
        except notes.TlogError as exc:
            raise BadInput(f"not a log verifier key (name+keyid+base64): {exc}") from exc
        known = self.log_keys().get(verifier.name, [])
        if any(v.public_key == verifier.public_key for v in known):
            return False
        existing = self.logs_path.read_bytes() if self.logs_path.exists() else b""
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"
        write_atomically(self.logs_path, existing + (verifier.to_text() + "\n").encode())
        return True

    def _state_path(self, origin: str) -> Path:
        return self.path / "state" / (hashlib.sha256(origin.encode("utf-8")).hexdigest() + ".json")

    def load_state(self, origin: str) -> LogState | None:
        path = self._state_path(origin)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"the witness state {path} is unreadable: {exc}; restore it from a backup") from exc
        return LogState(record["origin"], int(record["size"]), base64.b64decode(record["root"]), record["checkpoint"])

    def save_state(self, state: LogState) -> None:
        write_atomically(self._state_path(state.origin), state.to_json())

    def keep_refused(self, origin: str, body: bytes, reason: str) -> None:
        name = f"{time.time_ns()}-{hashlib.sha256(origin.encode()).hexdigest()[:16]}.txt"
        try:
            write_atomically(self.path / "refused" / name, f"# {reason}\n".encode() + body)
        except OSError:
            pass


class Witness:
    """The add-checkpoint logic over a :class:`WitnessDirectory`; safe to call from many
    threads (and from several processes sharing the directory)."""

    def __init__(self, directory: WitnessDirectory, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.cosigner = directory.cosigner()
        self.logs = directory.log_keys()
        self.clock = clock
        self._lock = threading.Lock()
        (directory.path / "state").mkdir(exist_ok=True)
        (directory.path / "refused").mkdir(exist_ok=True)
        self._lock_file = directory.path / "state" / ".lock"

    def add_checkpoint(self, body: bytes) -> Answer:
        try:
            request = parse_request(body)
        except BadInput as exc:
            return _text(400, str(exc))
        checkpoint_text, sep, _ = request.note.partition("\n\n")
        origin = checkpoint_text.split("\n", 1)[0]
        verifiers = self.logs.get(origin)
        if not sep or verifiers is None:
            return _text(404, "unknown log origin")
        try:
            checkpoint, _note = notes.open_checkpoint(request.note, verifiers, origin=origin)
        except (notes.UnverifiedNote, notes.InvalidSignature):
            return _text(403, "no valid signature by a known key of this log")
        except notes.TlogError as exc:
            return _text(400, f"malformed checkpoint: {exc}")
        if request.old > checkpoint.size:
            return _text(400, "the old size is larger than the checkpoint's size")
        if request.old == 0 and request.proof:
            return _text(400, "the consistency proof must be empty when the old size is 0")
        with self._lock, open(self._lock_file, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            state = self.directory.load_state(origin)
            held = state.size if state else 0
            if request.old != held:
                if checkpoint.size < held:
                    self.directory.keep_refused(origin, body, f"old size {request.old}, held {held}")
                return Answer(409, f"{held}\n".encode(), SIZE_TYPE)
            if state is not None and checkpoint.size == held:
                if state.root != checkpoint.root:
                    self.directory.keep_refused(origin, body, f"same size {held}, different root")
                    return Answer(409, f"{held}\n".encode(), SIZE_TYPE)
            elif state is not None and not tree.verify_consistency(
                held, checkpoint.size, state.root, checkpoint.root, request.proof
            ):
                self.directory.keep_refused(origin, body, f"consistency proof from {held} to {checkpoint.size} fails")
                return _text(422, f"the consistency proof from size {held} to {checkpoint.size} does not verify")
            self.directory.save_state(LogState(origin, checkpoint.size, checkpoint.root, request.note))
        line = self.cosigner.cosign(notes.format_checkpoint(checkpoint), int(self.clock()))
        return Answer(200, line.encode("utf-8"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "custody-witness"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16
    witness: Witness
    quiet: bool = False

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
        if not self.path.split("?", 1)[0].endswith("/add-checkpoint"):
            self._send(_text(404, "not found"))
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self.close_connection = True
            self._send(_text(411, "a Content-Length is required"))
            return
        length = int(length_text)
        if length > MAX_REQUEST:
            self.close_connection = True
            self._send(_text(413, f"requests are limited to {MAX_REQUEST} bytes"))
            return
        body = self.rfile.read(length)
        self._send(self.witness.add_checkpoint(body))

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("", "/key"):
            self._send(Answer(200, (self.witness.cosigner.verifier.to_text() + "\n").encode()))
        else:
            self._send(_text(404, "not found"))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if not self.quiet:
            message = (format % args).encode("unicode_escape").decode("ascii")
            os.write(2, f"{self.address_string()} {message}\n".encode())


class WitnessServer(ThreadingHTTPServer):
    """The HTTP server of one witness (``make_server``), which it names."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], witness: Witness) -> None:
        super().__init__(address, handler)
        self.witness = witness


def make_server(directory: WitnessDirectory, host: str, port: int, *, quiet: bool = False) -> WitnessServer:
    """A threading HTTP server answering add-checkpoint for ``directory``'s witness."""
    witness = Witness(directory)
    handler = type("WitnessHandler", (_Handler,), {"witness": witness, "quiet": quiet})
    server = WitnessServer((host, port), handler, witness)
    server.daemon_threads = True
    return server

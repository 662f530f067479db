"""The C2PA library in a process of its own: a hostile file that makes the native library
(``c2pa-rs``) crash, abort, eat memory or hang costs that file a finding, never the ingest.

``LibraryWorker`` (the ingest side) starts one worker process on the first file that needs the
library (most files never do: an MP4 without a C2PA box is decided from its box headers) and
reuses it for every later file of the ingest. Each file goes over a Unix socket as an open file
descriptor (the worker reads the very file the ingest opened, never a path that could be swapped)
and comes back as the ledger-ready record. The worker:

- runs with an address-space limit (``RLIMIT_AS``, ``MEMORY_LIMIT``) and a deadline per file
  (``deadline(size)``); past the deadline it is killed (SIGKILL) and the next file gets a new one;
- a crash (a signal), an abort, going over the limit or the deadline becomes ``status: "error"``
  with a ``finding`` naming the file and what happened, and the ingest goes on;
- never outlives the ingest: ``close()`` ends it (the ingest command closes it on every way out,
  Ctrl-C and SIGTERM included); if the ingest dies without closing (SIGKILL), the worker sees its
  socket end (a thread watches it) and the kernel sends it SIGKILL (``PR_SET_PDEATHSIG``). The
  kernel ties that signal to the THREAD that started the worker, so a worker found ended before
  a file is sent to it is replaced, not counted against the file.

``CUSTODY_TEST_C2PA_FAULT`` (``abort``, ``segv``, ``hang``, ``memory``) makes the worker fail
that way instead of calling the library. It is for the tests ONLY (they prove the faults are
contained); nothing else sets it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, Any, BinaryIO

from custody.media.tools import _clean

MEMORY_LIMIT = 2 << 30
"""Address space of the worker (Python, the native library and its threads included)."""
BASE_SECONDS = 30.0
BYTES_PER_SECOND = 16 << 20
"""The deadline per file: ``BASE_SECONDS`` plus its size at this (slow) rate, as the library's
hard-binding check reads the whole file."""
FAULT_VARIABLE = "CUSTODY_TEST_C2PA_FAULT"
MAX_MESSAGE = 1 << 20
OVER_LIMIT = 86  # the worker's exit status when Python itself ran out of its memory limit
_STDERR_TAIL = 4096


def deadline(size: int) -> float:
    return BASE_SECONDS + size / BYTES_PER_SECOND


class LibraryWorker:
    """The ingest's side: ``read(fd, size, name)`` returns the record for an open file."""

    def __init__(self, trust_anchors: str | None, tool: str, memory_limit: int = MEMORY_LIMIT,
                 timeout: float | None = None) -> None:
        self.trust_anchors = trust_anchors
        self.tool = tool
        self.memory_limit = memory_limit
        self.timeout = timeout
        """A fixed deadline in seconds (tests); None: ``deadline(size)``."""
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._stderr: IO[bytes] | None = None
        self._guard = threading.Lock()  # start and close, which may come from another thread
        self._closed = False
        self._stopped: subprocess.Popen[bytes] | None = None  # the worker killed at its deadline

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _start(self) -> tuple[subprocess.Popen[bytes], socket.socket] | None:
        with self._guard:
            if self._closed:
                return None
            if self._process is not None and self._process.poll() is None and self._socket is not None:
                return self._process, self._socket
            self._end()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            anchors = tempfile.TemporaryFile()
            anchors.write((self.trust_anchors or "").encode())
            anchors.flush()
            anchors.seek(0)
            self._stderr = tempfile.TemporaryFile()
            command = [sys.executable, "-m", "custody.media.c2pa_child", str(theirs.fileno()),
                       str(anchors.fileno()), str(os.getpid()), str(self.memory_limit)]
            try:
                self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                 stderr=self._stderr, pass_fds=(theirs.fileno(), anchors.fileno()))
            finally:
                theirs.close()
                anchors.close()
            self._socket = ours
            return self._process, ours

    def read(self, fd: int, size: int, name: str) -> dict[str, Any]:
        for attempt in (1, 2):
            started = self._start()
            if started is None:
                return self._error(f"the ingest ended before the C2PA library read {name}")
            process, channel = started
            mark = self._stderr.seek(0, os.SEEK_END) if self._stderr is not None else 0
            try:
                socket.send_fds(channel, [b"read"], [fd], socket.MSG_NOSIGNAL)
            except OSError:
                # the worker ended between two files (its starting thread ended): a new one
                self._discard(process)
                if attempt == 2:
                    return self._error(f"the C2PA library's worker could not be started for {name}")
                continue
            record = self._answer(process, channel, size, name, mark)
            if process.returncode == -signal.SIGKILL and attempt == 1 and not self._closed and self._stopped is not process:
                continue  # killed by no one here (its starting thread ended as the file was sent): once more
            return record
        raise AssertionError("unreachable")

    def _answer(self, process: subprocess.Popen[bytes], channel: socket.socket, size: int, name: str,
                mark: int) -> dict[str, Any]:
        limit = self.timeout if self.timeout is not None else deadline(size)
        poller = select.poll()
        poller.register(channel, select.POLLIN)
        ends = time.monotonic() + limit
        while not poller.poll(max(0, int((ends - time.monotonic()) * 1000)) + 1):
            if time.monotonic() >= ends:
                self._stopped = process
                self._discard(process, kill=True)
                return self._error(f"the C2PA library did not finish reading {name} within {limit:.0f} s "
                                   "(hung?) and was stopped; the bytes are preserved as they are")
        try:
            message = channel.recv(MAX_MESSAGE)
        except OSError:
            message = b""
        if not message:
            return self._crashed(process, name, mark)
        try:
            record = json.loads(message)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            self._discard(process)
            return self._error(f"the C2PA library's worker answered unreadably for {name}; "
                               "the bytes are preserved as they are")
        return record

    def _crashed(self, process: subprocess.Popen[bytes], name: str, mark: int) -> dict[str, Any]:
        try:
            code = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        said = self._said(mark)
        self._discard(process)
        memory = f"went over its memory limit ({self.memory_limit >> 20} MiB)"
        if code == OVER_LIMIT or "memory allocation" in said:
            what = memory
        elif code is not None and code < 0:
            try:
                label = signal.Signals(-code).name
            except ValueError:
                label = "unknown"
            what = f"crashed (signal {-code}, {label})"
        else:
            what = f"ended unexpectedly (exit status {code})"
        return self._error(f"the C2PA library {what} reading {name}; the bytes are preserved as they are")

    def _said(self, mark: int) -> str:
        if self._stderr is None:
            return ""
        end = self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(mark, end - _STDERR_TAIL))
        return self._stderr.read(_STDERR_TAIL).decode("utf-8", "replace")

    def _error(self, finding: str) -> dict[str, Any]:
        return {"status": "error", "tool": self.tool, "finding": _clean(finding)}

    def _discard(self, process: subprocess.Popen[bytes], kill: bool = False) -> None:
        with self._guard:
            if self._process is process:
                if kill and process.poll() is None:
                    process.kill()  # our own child, by its handle
                self._end()

    def _end(self) -> None:
        process, self._process = self._process, None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if process is not None:
            try:
                process.wait(timeout=1)  # its socket has ended: it leaves on its own
            except subprocess.TimeoutExpired:
                process.kill()  # our own child, by its handle
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        """End the worker (if one was started), for good. Safe from any thread, at any time."""
        with self._guard:
            self._closed = True
            process = self._process
            if process is not None and process.poll() is None:
                process.kill()  # a file it is still reading is given up: the ingest is ending
            self._end()

    def __del__(self) -> None:
        self.close()


def _die_with(parent: int) -> None:
    """SIGKILL when the ingest process dies (the kernel's PR_SET_PDEATHSIG), checked once after
    setting it in case it died before."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # the socket watch below still ends it
    if os.getppid() != parent:
        os._exit(0)


def _fault(kind: str) -> None:
    if kind == "abort":
        os.abort()
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "hang":
        time.sleep(3600)
    if kind == "memory":
        bytearray(MEMORY_LIMIT * 2)


Read = Callable[[BinaryIO], dict[str, Any]]


def serve(channel_fd: int, anchors_fd: int, parent: int, memory_limit: int, reader_for: Callable[[str | None], Read]) -> None:
    """The worker (``custody.media.c2pa_child``): one file at a time, each read by
    ``reader_for(trust_anchors)``, until the ingest's end of the socket closes."""
    import queue
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the ingest, which ends the worker
    _die_with(parent)
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    channel = socket.socket(fileno=channel_fd)
    with os.fdopen(anchors_fd, "rb") as handle:
        anchors = handle.read().decode() or None
    requests: queue.Queue[int] = queue.Queue()

    def watch() -> None:
        while True:
            try:
                _, fds, _, _ = socket.recv_fds(channel, 16, 1)
            except OSError:
                fds = []
            if not fds:
                os._exit(0)  # the ingest closed its end or died
            requests.put(fds[0])

    threading.Thread(target=watch, daemon=True).start()
    read = reader_for(anchors)
    fault = os.environ.get(FAULT_VARIABLE)
    while True:
        fd = requests.get()
        if fault:
            _fault(fault)
        with os.fdopen(fd, "rb") as handle:
            handle.seek(0)
            record = read(handle)
        channel.send(json.dumps(record).encode())


"""Progress bars on stderr, drawn only when stderr is a terminal (never in pipes or logs)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click


class TerminalProgress:
    """A click progress bar on stderr with a throughput figure; safe to feed from threads."""

    def __init__(self, rate_label: str = "MB/s") -> None:
        self._bar: Any = None
        self._started = time.monotonic()
        self._bytes = 0
        self._rate_label = rate_label
        self._lock = threading.Lock()

    def open(self, length: int, label: str) -> None:
        if not sys.stderr.isatty():
            return
        self._started = time.monotonic()
        self._bar = click.progressbar(
            length=max(length, 1),
            label=label,
            file=sys.stderr,
            show_eta=True,
            show_percent=True,
            item_show_func=lambda _: self._rate(),
        )
        self._bar.__enter__()

    def _rate(self) -> str:
        if not self._bytes:
            return ""
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return f"{self._bytes / elapsed / 1e6:.0f} {self._rate_label}"

    def count_bytes(self, nbytes: int) -> None:
        with self._lock:
            self._bytes += nbytes

    def step(self, amount: int = 1) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.update(amount)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

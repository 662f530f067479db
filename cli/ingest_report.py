"""What ``custody ingest`` shows of a whole job: one progress bar (files and bytes, rate, ETA)
on stderr while it runs, when stderr is a terminal, and a summary table at the end."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from cli.progress import TerminalProgress
from cli.render import echo, printable

if TYPE_CHECKING:
    from custody.evidence.collect import IngestResult

STATUSES = (("recorded", "recorded"), ("already-stored", "already stored"), ("skipped", "skipped"), ("failed", "failed"))
_ABSENT = ("absent", "absent")  # listed by an --expect manifest, not found: shown when there are any
_REASONS_SHOWN = 8


class IngestBar(TerminalProgress):
    """One bar over the whole job, drawn for several files or a large one: its length is the
    job's bytes; beside it the files done out of all, files per second and MB/s; click adds
    the percentage and the ETA."""

    def __init__(self) -> None:
        super().__init__()
        self._files = 0
        self._done = 0
        self.started = time.monotonic()
        self.total_bytes = 0

    def start(self, files: int, total_bytes: int) -> None:
        self._files = files
        self.total_bytes = total_bytes
        self.started = time.monotonic()
        if files >= 2 or total_bytes >= (256 << 20):
            self.open(total_bytes, f"ingesting {files} file(s)")

    def _rate(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return (f"{self._done}/{self._files} files, {self._done / elapsed:.1f} files/s, "
                f"{self._bytes / elapsed / 1e6:.0f} MB/s")

    def advance(self, nbytes: int) -> None:
        self.count_bytes(nbytes)
        self.step(nbytes)

    def finished(self, result: IngestResult) -> None:
        with self._lock:
            self._done += 1
            if self._bar is not None:
                self._bar.render_progress()  # update(0) would not redraw


def summary(results: list[Any], elapsed: float) -> dict[str, Any]:
    """Counts per status, with each skip and failure reason and how many files it concerns."""
    counts = Counter(r.status for r in results)
    reasons: dict[str, Counter[str]] = {status: Counter() for status in ("skipped", "failed", "absent")}
    for result in results:
        if result.status in reasons:
            reasons[result.status][result.reason or "no reason given"] += 1
    stored = sum(r.size or 0 for r in results if r.status in ("recorded", "already-stored"))
    return {
        "files": len(results),
        **{status: counts.get(status, 0) for status, _ in (*STATUSES, _ABSENT)},
        "bytes": stored,
        "seconds": round(elapsed, 3),
        "reasons": {status: [{"reason": reason, "files": n} for reason, n in found.most_common()]
                    for status, found in reasons.items() if found},
    }


def echo_summary(counts: dict[str, Any], as_json: bool) -> None:
    """The summary on stderr: a table, or (``--json``) one JSON object ``{"summary": ...}`` as
    the last line, so that stdout keeps exactly the list of per-file records."""
    if as_json:
        echo(json.dumps({"summary": counts}, sort_keys=True, ensure_ascii=False), err=True)
        return
    seconds = counts["seconds"]
    rate = f", {counts['files'] / seconds:.1f} files/s" if seconds > 0 and counts["files"] > 1 else ""
    echo(f"custody: ingest summary: {counts['files']} file(s), {counts['bytes'] / 1e6:.1f} MB preserved "
         f"in {seconds:.1f} s{rate}", err=True)
    for status, label in (*STATUSES, _ABSENT) if counts["absent"] else STATUSES:
        echo(f"  {label:<15} {counts[status]:>7}", err=True)
        for entry in counts["reasons"].get(status, [])[:_REASONS_SHOWN]:
            echo(f"  {'':<15} {entry['files']:>7}  {printable(entry['reason'])}", err=True)
        hidden = counts["reasons"].get(status, [])[_REASONS_SHOWN:]
        if hidden:
            echo(f"  {'':<15} {sum(e['files'] for e in hidden):>7}  (other reasons: see the lines above)", err=True)

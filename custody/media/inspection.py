"""What ``custody ingest`` learns of each file: ``inspect_media`` probes it and lists its packets,
and never prevents preservation."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from custody.evidence.ingest import IngestResult, Inspection
from custody.media.credentials import CredentialReader, credentials_warning
from custody.media.recorded import recording_start
from custody.ledger.canonical import printable_path
from custody.media.listing import ProbeRunFailed, packet_list, probe_and_list
from custody.media.packets import PacketList
from custody.media.probe import probe
from custody.media.tools import _STDERR_LIMIT, DEFAULT_TOOLS, MediaTools, MediaToolsMissing, MediaUnreadable, _clean

_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot", b"uuid"}
_MEDIA_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".qt", ".3gp", ".3g2", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".ts",
    ".mpg", ".mpeg", ".wmv", ".asf", ".flv", ".m4a", ".wav", ".mp3", ".aac",
}


def sniff_container(path: str) -> str | None:
    """A container name when the file's first bytes (or its extension) say audio/video."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(192)
    except OSError:
        head = b""
    if head[4:8] in _BMFF_BOXES:
        return "mp4/mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska/webm"
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"WAVE"):
        return "avi" if head[8:12] == b"AVI " else "wav"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpeg-ts"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg-ps"
    if head.startswith(b"FLV"):
        return "flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    extension = os.path.splitext(path)[1].lower()
    return extension[1:] if extension in _MEDIA_EXTENSIONS else None


def _text_file(path: str) -> bool:
    """True for a non-empty file whose first 4 KiB are UTF-8 text (a JSON, XML or CSV
    sidecar), whatever its name: no audio or video container starts like that, so ffprobe
    need not run."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    if not head:
        return False
    text = head.decode("utf-8", "replace")
    if len(head) == 4096:
        text = text.rstrip("\ufffd")
    return "\ufffd" not in text and all(c.isprintable() or c in "\t\n\r\f" for c in text)


def inspect_media(path: str, tools: MediaTools = DEFAULT_TOOLS) -> Inspection:
    """The ingest ``Inspector``: never raises for a file, so probing never prevents preservation.

    ``details`` (the event's ``media``):
    - a video or audio file: ``probe``'s result, each stream with its ``packets`` count, and
      the packet list as the ``packets`` attachment (stored as ``packets/<blake3>``);
    - ffprobe cannot read a file that looks like media (e.g. a truncated MP4):
      ``{"probed": true, "kind": "unreadable-media", "container_guess", "probe_error",
      "finding"}``;
    - anything else: ``{"probed": true, "kind": "not-media", "reason"}``; a text file (a JSON
      or XML sidecar) is recognised without running ffprobe: ``{"probed": false, "kind":
      "not-media", "reason"}``;
    - no ffprobe: ``{"probed": false, "reason"}``.
    With ``tools.in_process``, a video or audio file that demuxes cleanly in this process
    (``custody.media.inprocess``, PyAV) is probed and listed there, without ffprobe; the
    ``tool`` says which. Everything else goes to ffprobe as above.
    When listing packets fails after a good probe, ``packets_error`` and ``finding`` say so;
    ffprobe's complaints while listing them are in ``packets_warning``."""
    if _text_file(path):
        return Inspection({"probed": False, "kind": "not-media", "reason": "a text file (sidecar metadata?), not audio or video"})
    if tools.in_process:
        from custody.media.inprocess import probe_and_list as in_process

        found = in_process(path)
        if found is not None and found[0]["kind"] in ("video", "audio"):
            return _with_packets(*found)
    try:
        details, listing = probe_and_list(path, tools)
    except MediaToolsMissing as exc:
        return Inspection({"probed": False, "reason": _clean(str(exc))})
    except ProbeRunFailed as exc:
        return _unreadable(path, exc)
    except MediaUnreadable:
        return _inspect_in_two_runs(path, tools)
    if details["kind"] not in ("video", "audio"):
        return Inspection(details)
    return _with_packets(details, listing)


def _unreadable(path: str, exc: MediaUnreadable) -> Inspection:
    guess = sniff_container(path)
    if guess is None:
        return Inspection({"probed": True, "kind": "not-media", "reason": _clean(f"not audio or video: {exc.detail}")})
    return Inspection({
        "probed": True,
        "kind": "unreadable-media",
        "container_guess": guess,
        "probe_error": _clean(exc.detail),
        "finding": f"ffprobe cannot read it as {guess} (truncated or corrupt?); the bytes are preserved as they are",
    })


def _inspect_in_two_runs(path: str, tools: MediaTools) -> Inspection:
    """``probe``, then ``packet_list``: where the one run of ``probe_and_list`` read the file
    but printed what could not be used, this tells a good probe with a failed packet list
    (``packets_error``) from a file ffprobe cannot read at all."""
    try:
        details = probe(path, tools)
    except MediaToolsMissing as exc:
        return Inspection({"probed": False, "reason": _clean(str(exc))})
    except MediaUnreadable as exc:
        return _unreadable(path, exc)
    if details["kind"] not in ("video", "audio"):
        return Inspection(details)
    try:
        listing = packet_list(path, tools)
    except (MediaToolsMissing, MediaUnreadable) as exc:
        details["packets_error"] = _clean(exc.detail if isinstance(exc, MediaUnreadable) else str(exc))
        details["finding"] = "the packet list could not be made; the bytes are preserved as they are"
        return Inspection(details)
    return _with_packets(details, listing)


def _with_packets(details: dict[str, Any], listing: PacketList) -> Inspection:
    counts = Counter(p.stream for p in listing.packets)
    for stream in details["streams"]:
        stream["packets"] = counts.get(stream["index"], 0)
    if listing.warnings:
        details["packets_warning"] = _clean("; ".join(listing.warnings))[-_STDERR_LIMIT:]
        details["finding"] = "ffprobe reported errors while reading the packets (damaged or truncated?)"
    return Inspection(details, {"packets": listing.render()})


def provenance(path: str, details: dict[str, Any], credentials: CredentialReader,
               declared: tuple[str, str] | None = None) -> dict[str, Any]:
    """The ingest event's ``recorded`` (audio and video only; ``declared``: the start a vendor
    manifest gives) and ``content_credentials``."""
    event: dict[str, Any] = {}
    if details.get("kind") in ("video", "audio", "unreadable-media"):
        try:
            mtime = datetime.fromtimestamp(os.stat(path).st_mtime_ns // 1_000_000_000, timezone.utc)
            event["recorded"] = recording_start(path, details, mtime, declared=declared)
        except OSError:
            pass
    event["content_credentials"] = credentials.read(path)
    return event


def media_warning(details: dict[str, Any]) -> str | None:
    """One line for the ingest report when probing found something a person should know."""
    if details.get("kind") == "not-media":
        return None
    if details.get("probed") is False:
        return f"not probed: {details.get('reason')}"
    if "probe_error" in details:
        return f"{details['finding']}: {details['probe_error']}"
    if "packets_error" in details:
        return f"{details['finding']}: {details['packets_error']}"
    if "packets_warning" in details:
        return f"{details['finding']}: {details['packets_warning']}"
    return None


class MediaInspector:
    """``inspect_media`` with given tools, as an ingest ``Inspector`` that also records the
    recording's start (``custody.media.recorded``) and its content credentials
    (``custody.media.credentials``), and remembers each file's warnings so that ``annotate``
    can add them to the ingest results."""

    def __init__(self, tools: MediaTools = DEFAULT_TOOLS, credentials: CredentialReader | None = None) -> None:
        self.tools = tools
        self.credentials = credentials or CredentialReader()
        self.warnings: dict[str, str] = {}
        self.declared_start: Callable[[str], tuple[str, str] | None] | None = None
        """Where set (``ingest --expect``): the recording start a vendor manifest declares."""

    def __call__(self, path: str) -> Inspection:
        inspection = inspect_media(path, self.tools)
        declared = self.declared_start(path) if self.declared_start is not None else None
        inspection.event.update(provenance(path, inspection.details, self.credentials, declared))
        found = [media_warning(inspection.details), credentials_warning(inspection.event.get("content_credentials"))]
        warning = "; ".join(w for w in found if w) or None
        if warning:
            self.warnings[printable_path(path)] = warning
        return inspection

    def close(self) -> None:
        """End the C2PA library's worker process (``CredentialReader.close``)."""
        self.credentials.close()

    def annotate(self, results: Iterable[IngestResult]) -> None:
        for result in results:
            warning = self.warnings.get(result.path)
            if warning and result.status == "recorded":
                result.warning = f"{result.warning}; {warning}" if result.warning else warning

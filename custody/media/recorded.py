"""When a recording started, from the best source the file offers, with the source named.

``recording_start`` gives the ingest event's ``recorded``::

    start        RFC 3339 UTC (``...Z``, milliseconds when the source has them)
    source       "container" | "manifest" | "sidecar" | "mtime"
    from         where exactly: the container tag, the sidecar's file and field, or the file
    duration_us  the recording's duration as probed, when known
    rejected     sources that were present but not believable, each with the reason

Sources, best first:

1. ``container``: the recording's own creation time (MP4/MOV ``creation_time``, from the probe
   already done at ingest), written by the camera from its clock when it recorded.
2. ``manifest``: the start a vendor's manifest declares for the file (``ingest --expect`` with a
   CSV whose start column is found by name, ``custody.evidence.manifests.START_HEADERS``).
3. ``sidecar``: a vendor's metadata file beside the recording (``NAME.json``, ``NAME.xml``,
   ``NAME.EXT.json``, ``NAME.EXT.xml``) with a start-time field (``StartTime``,
   ``recording_start``, ``RecordedAt``, ...: see ``START_FIELDS``) holding an RFC 3339 time with
   an offset. Read bounded (``SIDECAR_LIMIT`` bytes, nesting ``MAX_DEPTH``).
4. ``mtime``: the file's modification time when it was preserved, less the recording's
   duration (a camera last writes a file when the recording ends); copying a file can change
   it, so it is the last resort, and said to be.

A time is not believed when it cannot be parsed, has no offset (the zone would be a guess), lies
before ``EARLIEST`` (a camera clock reset to its epoch) or more than a day after ingest.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from custody import times
from custody.media.tools import _clean

SOURCES = ("container", "manifest", "sidecar", "mtime")
SIDECAR_LIMIT = 1 << 20
MAX_DEPTH = 8
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
START_FIELDS = frozenset({
    "starttime", "startdatetime", "recordingstart", "recordingstarttime", "recordstart",
    "recordstarttime", "recordedat", "recordeddatetime", "recordingdate", "capturestart",
    "capturetime", "creationtime", "start",
})


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.rsplit("}", 1)[-1].lower())


def iso_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; milliseconds only when there are any."""
    return times.format_utc(moment, "milliseconds" if moment.astimezone(times.UTC).microsecond // 1000 else "seconds")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with an offset, in UTC (``custody.times``); ValueError saying why."""
    return times.parse_utc(text.strip())


def believable(moment: datetime, now: datetime) -> str | None:
    """Why ``moment`` is not a believable recording time, or None."""
    if moment < EARLIEST:
        return f"before {EARLIEST.year} (a camera clock reset?)"
    if moment > now + timedelta(days=1):
        return "after the time of ingest (a camera clock set ahead?)"
    return None


def _walk_json(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        for name, item in value.items():
            yield str(name), item
            yield from _walk_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value[:1000]:
            yield from _walk_json(item, depth + 1)


def _walk_xml(element: ElementTree.Element, depth: int = 0) -> Iterator[tuple[str, Any]]:
    if depth > MAX_DEPTH:
        return
    for name, value in element.attrib.items():
        yield name, value
    yield element.tag, (element.text or "")
    for child in list(element)[:1000]:
        yield from _walk_xml(child, depth + 1)


def sidecars(path: str) -> list[str]:
    """The metadata files beside ``path`` that may describe it, in the order they are tried."""
    stem, extension = os.path.splitext(path)
    names = [f"{base}{suffix}" for base in (stem, path) for suffix in (".json", ".xml", ".JSON", ".XML")]
    if not extension:
        names = names[:4]
    found = []
    for name in names:
        try:
            if os.path.isfile(name) and not os.path.samefile(name, path) and name not in found:
                found.append(name)
        except OSError:
            continue
    return found


def sidecar_start(sidecar: str) -> tuple[str, str] | str:
    """``(field, value)`` of the first start-time field in a sidecar, or why none was read."""
    try:
        with open(sidecar, "rb") as handle:
            data = handle.read(SIDECAR_LIMIT + 1)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if len(data) > SIDECAR_LIMIT:
        return f"larger than {SIDECAR_LIMIT} bytes; not read"
    try:
        if sidecar.lower().endswith(".json"):
            fields = _walk_json(json.loads(data.decode("utf-8")))
        else:
            if b"\x00" in data or data.startswith((b"\xff\xfe", b"\xfe\xff")):
                return "not UTF-8 XML; not read"
            if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
                return "an XML document type or entity declaration; not read"
            fields = _walk_xml(ElementTree.fromstring(data))
        for name, value in fields:
            if _key(name) in START_FIELDS and isinstance(value, str) and value.strip():
                return _clean(name.rsplit("}", 1)[-1])[:64], _clean(value.strip())[:64]
    except (ValueError, ElementTree.ParseError, RecursionError) as exc:
        return _clean(f"unreadable: {exc}")[:200]
    return "no start-time field"


def _judged(value: str, now: datetime) -> datetime | str:
    """The time ``value`` names if it is a believable start time, else why it is not."""
    try:
        moment = parse_time(value)
    except ValueError as exc:
        return str(exc)
    return believable(moment, now) or moment


def _declared(declared: tuple[str, str], now: datetime, rejected: list[dict[str, str]]) -> tuple[datetime, str, str] | None:
    where, value = _clean(declared[0])[:200], _clean(declared[1])[:64]
    judged = _judged(value, now)
    if isinstance(judged, datetime):
        return judged, "manifest", f"{where}: start"
    rejected.append({"source": "manifest", "value": f"{where}: {value}", "reason": judged})
    return None


def recording_start(path: str, media: Mapping[str, Any], mtime: datetime, now: datetime | None = None,
                    declared: tuple[str, str] | None = None) -> dict[str, Any]:
    """The ``recorded`` record of the file at ``path`` (see the module's docstring);
    ``declared``: (where, value) of the start a vendor manifest declares for it."""
    now = now or times.now()
    rejected: list[dict[str, str]] = []
    found: tuple[datetime, str, str] | None = None
    creation = media.get("creation_time")
    if isinstance(creation, str) and creation:
        judged = _judged(creation, now)
        if isinstance(judged, datetime):
            found = (judged, "container", "creation_time tag")
        else:
            rejected.append({"source": "container", "value": _clean(creation)[:64], "reason": judged})
    if found is None and declared is not None:
        found = _declared(declared, now, rejected)
    if found is None:
        for sidecar in sidecars(path):
            name = _clean(os.path.basename(sidecar))
            read = sidecar_start(sidecar)
            if isinstance(read, str):
                rejected.append({"source": "sidecar", "value": name, "reason": read})
                continue
            field_name, value = read
            judged = _judged(value, now)
            if isinstance(judged, datetime):
                found = (judged, "sidecar", f"{name}: {field_name}")
                break
            rejected.append({"source": "sidecar", "value": f"{name}: {field_name} = {value}", "reason": judged})
    duration = media.get("duration_us")
    if found is None:
        moment, told = mtime.astimezone(timezone.utc), "the file's modification time when preserved"
        if isinstance(duration, int) and not isinstance(duration, bool) and duration > 0:
            # a camera writes a file until the recording ends: its last write is the end
            moment, told = moment - timedelta(microseconds=duration), told + ", less the recording's duration"
        found = (moment, "mtime", told)
    record: dict[str, Any] = {"start": iso_utc(found[0]), "source": found[1], "from": found[2]}
    if isinstance(duration, int) and not isinstance(duration, bool) and duration >= 0:
        record["duration_us"] = duration
    if rejected:
        record["rejected"] = rejected
    return record


def recorded_of(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """An ingest event's recording start: its ``recorded``, or for an event made before it was
    recorded, the same rule applied to what the event holds (container time, else mtime)."""
    recorded = details.get("recorded")
    if isinstance(recorded, dict) and isinstance(recorded.get("start"), str):
        return dict(recorded)
    media = details.get("media") or {}
    source = details.get("source") or {}
    record: dict[str, Any] | None = None
    creation = media.get("creation_time") if isinstance(media, dict) else None
    if isinstance(creation, str):
        try:
            record = {"start": iso_utc(parse_time(creation)), "source": "container", "from": "creation_time tag"}
        except ValueError:
            record = None
    if record is None and isinstance(source, dict) and isinstance(source.get("mtime"), str):
        record = {"start": source["mtime"], "source": "mtime", "from": "the file's modification time when preserved"}
    if record is not None and isinstance(media, dict) and isinstance(media.get("duration_us"), int):
        record["duration_us"] = media["duration_us"]
    return record


SOURCE_WORDS = {
    "container": "the recording's own creation time (container metadata, from the camera's clock)",
    "manifest": "the start time the previous system's manifest (ingest --expect, a CSV) declared",
    "sidecar": "a start time in the vendor's metadata file beside the recording",
    "mtime": "the source file's modification time when it was preserved, less the recording's duration (the recording carried no creation time)",
}


def recorded_line(recorded: Mapping[str, Any] | None) -> str:
    """One line for people: when the recording started and from which source."""
    if not recorded:
        return "-"
    line = f"{recorded.get('start')} (from {recorded.get('source')}: {recorded.get('from')})"
    if isinstance(recorded.get("duration_us"), int):
        line += f", {recorded['duration_us'] / 1e6:.3f} s"
    for rejected in recorded.get("rejected") or ():
        line += f"; not used: {rejected.get('source')} {rejected.get('value')!r} ({rejected.get('reason')})"
    return line
